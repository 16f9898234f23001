//! The live page in a real browser (headless Chromium), in both lab modes,
//! and on the proxy's and ha's admin listeners: what a person sees, saved as
//! screenshots under target/screenshots/ (the README shows copies), and the
//! DOM the page's scripts built, checked for the chart, the VIP timeline with
//! its failovers and the gap the client saw.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // blocking tests: no tokio clock

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use stackd_e2e::browser::{assert_picture, capture};
use stackd_e2e::lab::{Lab, LoopbackLab};
use stackd_testkit::process::Signal;
use stackd_testkit::{http, require_root, wait_until};

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

fn lab_json(port: u16) -> serde_json::Value {
    http::get(SocketAddr::from(([127, 0, 0, 1], port)), "/lab.json")
        .ok()
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn loopback_lab_page_charts_requests_and_errors_per_backend() {
    let lab = LoopbackLab::start();
    let (proxy, status) = (lab.port("open"), lab.port("status"));
    let proxy = SocketAddr::from(([127, 0, 0, 1], proxy));
    // Some traffic, then one backend dies: the chart shows both.
    let traffic = |n: usize| {
        for _ in 0..n {
            let _ = http::get(proxy, "/session");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    traffic(150);
    stackd_testkit::process::signal(lab.backend_pid("137server1"), Signal::SIGKILL);
    traffic(100);
    wait_until(
        "the lab seeing the backend down",
        Duration::from_secs(10),
        || lab_json(status)["backends"][0]["ok"] == false,
    );
    let png = shots().join("lab-loopback.png");
    let dom = capture(&format!("http://127.0.0.1:{status}/"), &png, None);
    assert_picture(&png, 40_000);
    assert!(dom.contains("stackd lab (loopback)"), "{dom}");
    assert!(dom.contains("1 down"), "the badge counts the dead backend");
    let chart = dom.split("id=\"rate\"").nth(1).unwrap_or_default();
    assert!(
        chart.matches("<path d=\"M").count() >= 4,
        "a requests and an errors line per backend"
    );
    assert!(
        dom.contains("137server1") && dom.contains("req/s"),
        "legend"
    );
    assert!(dom.contains("Try"), "lab controls are shown in the lab");
}

/// The client namespace's name (from the `client ip netns exec NS ...` line).
fn client_ns(lab: &Lab) -> String {
    lab.line("client")
        .split_whitespace()
        .nth(4)
        .unwrap()
        .to_owned()
}

fn failovers(port: u16) -> usize {
    lab_json(port)["timeline"]["failovers"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn netns_lab_page_shows_who_held_the_vip_and_the_gap_the_client_saw() {
    require_root();
    let mut lab = Lab::netns();
    let port = lab.port("status");
    wait_until(
        "px1 holding the VIP on the page",
        Duration::from_secs(20),
        || {
            lab_json(port)["timeline"]["segments"]
                .as_array()
                .and_then(|s| s.last().cloned())
                .is_some_and(|s| s["holder"] == "px1")
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    // A planned switchover and the way back (preemption): two failovers.
    lab.toggle("px1-ha");
    wait_until(
        "the failover to px2 on the page",
        Duration::from_secs(15),
        || failovers(port) >= 1,
    );
    std::thread::sleep(Duration::from_secs(3));
    lab.toggle("px1-ha");
    wait_until("px1 taking the VIP back", Duration::from_secs(20), || {
        failovers(port) >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    let tl = lab_json(port)["timeline"].clone();
    println!("failovers: {}", tl["failovers"]);

    let png = shots().join("lab-netns.png");
    let dom = capture(&format!("http://127.0.0.1:{port}/"), &png, None);
    assert_picture(&png, 40_000);
    assert!(dom.contains("stackd lab (network namespaces)"), "{dom}");
    assert!(
        dom.contains("px1 holds VIP") && dom.contains("px2 holds VIP"),
        "VIP lanes"
    );
    assert!(dom.contains("client answered"), "the client's lane");
    assert!(
        dom.contains("px1→px2") && dom.contains("px2→px1"),
        "failover markers"
    );
    assert!(dom.contains("gap the client saw"), "failover table");

    // The same page without the lab's controls, on both admin listeners of px1.
    let cl = client_ns(&lab);
    let png = shots().join("admin-ha.png");
    let dom = capture("http://192.0.2.133:9091/", &png, Some(&cl));
    assert_picture(&png, 15_000);
    assert!(
        dom.contains("stackd ha") && dom.contains("VRRP instances"),
        "{dom}"
    );
    assert!(dom.contains("MASTER"), "{dom}");
    assert!(
        !dom.contains("<h2>Try</h2>") || dom.contains("id=\"lab-sec\" class=\"hidden\""),
        "no lab controls"
    );
    let png = shots().join("admin-proxy.png");
    let dom = capture("http://192.0.2.133:9090/", &png, Some(&cl));
    assert_picture(&png, 15_000);
    assert!(
        dom.contains("stackd proxy") && dom.contains("Upstream servers"),
        "{dom}"
    );
    assert!(
        dom.contains("id=\"lab-sec\" class=\"hidden\""),
        "no lab controls"
    );

    lab.guard.signal(Signal::SIGINT);
    assert!(
        lab.guard.wait_exit(Duration::from_secs(30)).is_some(),
        "lab did not stop"
    );
}
