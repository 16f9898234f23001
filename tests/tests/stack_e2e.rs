//! The seed's story, end to end, on the five hosts of SPEC.md built as
//! network namespaces (needs root): every process is the real `stackd`
//! binary or a real `redis-server`, every request goes from the client host
//! through the VIP. Each test prints what it measured and removes its
//! namespaces and processes even when it fails.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // blocking tests measure with the std clock

use std::time::{Duration, Instant};

use serde_json::Value;
use stackd_lab::five_hosts::{FiveHosts, Settings};
use stackd_testkit::http::Reply;
use stackd_testkit::{poll as wait, require_root, stackd_bin};

/// A serving stack; on failure its component logs are printed before it is torn down.
struct Stack(FiveHosts);

impl Stack {
    fn start(tag: &str) -> Stack {
        require_root();
        let s = Stack(FiveHosts::start(stackd_bin(), tag, &Settings::default()).unwrap());
        s.0.wait_serving(Duration::from_secs(30)).unwrap();
        wait(Duration::from_secs(10), || s.0.vip_holder() == Some("px1"))
            .expect("px1 (priority 100) should hold the VIP");
        s
    }
}

impl std::ops::Deref for Stack {
    type Target = FiveHosts;
    fn deref(&self) -> &FiveHosts {
        &self.0
    }
}

impl std::ops::DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut FiveHosts {
        &mut self.0
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in stackd_lab::five_hosts::COMPONENTS {
                eprintln!(
                    "---- {name} (last 25 lines) ----\n{}",
                    self.0.log_tail(name, 25)
                );
            }
        }
    }
}

fn json(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// GET /session with the cookie; keeps the cookie up to date.
fn session(s: &FiveHosts, cookie: &mut Option<String>) -> std::io::Result<Value> {
    let r = s.get("/session", cookie.as_deref())?;
    if r.status != 200 {
        return Err(std::io::Error::other(format!("{} {}", r.status, r.body)));
    }
    if let Some(c) = r.cookie() {
        *cookie = Some(c);
    }
    Ok(json(&r))
}

/// Requests /session every 50 ms until `limit`, counting failures; returns
/// (failed, longest gap without a successful answer, last answer).
fn keep_requesting(
    s: &FiveHosts,
    cookie: &mut Option<String>,
    limit: Duration,
    mut until: impl FnMut(&Value) -> bool,
) -> (u32, Duration, Value) {
    let start = Instant::now();
    let mut last_ok = Instant::now();
    let mut gap = Duration::ZERO;
    let mut failed = 0;
    let mut last = Value::Null;
    while start.elapsed() < limit {
        let t = Instant::now();
        match s.request_within(
            Duration::from_millis(500),
            "GET",
            "http://192.0.2.88/session",
            cookie.as_deref(),
            None,
            &[],
        ) {
            Ok(r) if r.status == 200 => {
                gap = gap.max(t.duration_since(last_ok));
                last_ok = Instant::now();
                if let Some(c) = r.cookie() {
                    *cookie = Some(c);
                }
                last = json(&r);
                if until(&last) {
                    break;
                }
            }
            _ => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (failed, gap, last)
}

#[test]
fn sessions_stay_continuous_while_requests_alternate_between_backends() {
    let s = Stack::start("e2ealt");
    let mut cookie = None;
    let mut nodes = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for i in 1..=10 {
        let v = session(&s, &mut cookie).unwrap();
        assert_eq!(v["visits"], i, "{v}");
        nodes.insert(v["node"].as_str().unwrap().to_owned());
        ids.insert(stackd_testkit::http::session_base(&v));
    }
    println!("story 1: 10 requests through the VIP, nodes {nodes:?}, one session {ids:?}");
    assert_eq!(nodes.len(), 2, "round robin must reach both backends");
    assert_eq!(ids.len(), 1, "one session across both backends");
}

#[test]
fn login_survives_the_backend_that_served_it() {
    let mut s = Stack::start("e2elogin");
    let mut cookie = None;
    session(&s, &mut cookie).unwrap();
    let r = s
        .request(
            "POST",
            "http://192.0.2.88/login",
            cookie.as_deref(),
            Some(r#"{"user":"alice"}"#),
            &[],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    cookie = r.cookie().or(cookie);
    let login = json(&r);
    assert_eq!(login["user"], "alice");
    let victim = if login["node"] == "137server1" {
        "be1"
    } else {
        "be2"
    };
    s.stop_component(victim, "KILL").unwrap();
    let mut failed = 0;
    for _ in 0..20 {
        match session(&s, &mut cookie) {
            Ok(v) => assert_eq!(v["user"], "alice", "{v}"),
            Err(_) => failed += 1,
        }
    }
    println!(
        "story 2: logged in on {}, killed {victim}: {failed} of 20 following requests failed",
        login["node"]
    );
    assert_eq!(failed, 0);
}

#[test]
fn primary_host_dies_the_standby_serves_and_the_primary_takes_back() {
    let mut s = Stack::start("e2ehost");
    let mut cookie = None;
    let before = session(&s, &mut cookie).unwrap()["visits"]
        .as_u64()
        .unwrap();
    // Host death: the link goes first, then its processes (as when power fails).
    let t = Instant::now();
    s.link("px1", false).unwrap();
    s.stop_component("px1-ha", "KILL").unwrap();
    s.stop_component("px1-proxy", "KILL").unwrap();
    // The link is down at once, so every success from here on is px2's; 40 of
    // them (about 2 s of service) show the standby really serves.
    let mut served = 0;
    let (failed, gap, last) = keep_requesting(&s, &mut cookie, Duration::from_secs(15), |_| {
        served += 1;
        served >= 40
    });
    // px1's dead interface still lists the VIP; what matters is px2 holding it.
    let moved = wait(Duration::from_secs(1), || s.has_vip("px2"));
    println!(
        "story 3: primary host died: VIP on px2 {:?}, longest client gap {} ms, {failed} failed requests (500 ms client timeout) over {:?}",
        moved.map(|_| "yes"),
        gap.as_millis(),
        t.elapsed()
    );
    assert!(moved.is_some(), "px2 must hold the VIP");
    assert!(
        last["visits"].as_u64().unwrap() > before,
        "the session continues: {last}"
    );
    assert!(
        gap < Duration::from_secs(5),
        "unavailability {gap:?} is over the bound"
    );

    s.link("px1", true).unwrap();
    s.start_component("px1-proxy").unwrap();
    s.start_component("px1-ha").unwrap();
    let back = wait(Duration::from_secs(15), || s.vip_holder() == Some("px1"));
    println!(
        "story 3: primary restarted: VIP back on px1 after {:?}",
        back
    );
    assert!(back.is_some(), "preemption: px1 must take the VIP back");
    let v = session(&s, &mut cookie).unwrap();
    assert!(
        v["visits"].as_u64().unwrap() > last["visits"].as_u64().unwrap(),
        "{v}"
    );
}

#[test]
fn primary_proxy_process_dies_the_tracker_moves_the_vip() {
    let mut s = Stack::start("e2etrack");
    let mut cookie = None;
    session(&s, &mut cookie).unwrap();
    let t = Instant::now();
    s.stop_component("px1-proxy", "KILL").unwrap();
    let moved = wait(Duration::from_secs(10), || s.vip_holder() == Some("px2"));
    let (failed, gap, last) = keep_requesting(&s, &mut cookie, Duration::from_secs(3), |_| false);
    println!(
        "story 4: proxy on px1 killed: VIP on px2 after {:?}; then {failed} failed requests, longest gap {} ms (total {:?})",
        moved,
        gap.as_millis(),
        t.elapsed()
    );
    assert!(
        moved.is_some(),
        "the failed /healthz track must move the VIP to px2"
    );
    assert_eq!(failed, 0, "px2 serves once it holds the VIP: {last}");
    let status = json(&s.admin("px1", ":9091/status").unwrap());
    assert!(
        status.to_string().contains("FAULT"),
        "px1 reports FAULT: {status}"
    );
    s.start_component("px1-proxy").unwrap();
    let back = wait(Duration::from_secs(15), || s.vip_holder() == Some("px1"));
    println!("story 4: proxy restarted: VIP back on px1 after {:?}", back);
    assert!(back.is_some());
}

#[test]
fn a_proxy_upgraded_by_sigusr2_is_followed_and_stopped_by_its_name() {
    let mut s = Stack::start("e2eupg");
    let mut cookie = None;
    session(&s, &mut cookie).unwrap();
    let old = s.pid("px1-proxy").unwrap();
    // What an operator types on px1 to upgrade the binary in place.
    let sent = std::process::Command::new("kill")
        .args(["-USR2", &old.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut upgrades = Vec::new();
    let followed = wait(Duration::from_secs(10), || {
        upgrades.extend(s.follow_upgrades());
        !upgrades.is_empty()
    });
    let (failed, gap, last) = keep_requesting(&s, &mut cookie, Duration::from_secs(2), |_| false);
    println!(
        "story 7: kill -USR2 on px1's proxy: hand-over seen after {followed:?} ({upgrades:?}); \
         then {failed} failed requests, longest gap {} ms",
        gap.as_millis()
    );
    let [(name, from, new)] = upgrades.as_slice() else {
        panic!("one hand-over, px1's proxy to its successor: {upgrades:?}");
    };
    assert_eq!((name.as_str(), *from), ("px1-proxy", old));
    assert_ne!(*new, old);
    assert_eq!(s.pid("px1-proxy"), Some(*new));
    assert!(s.running("px1-proxy"), "the successor serves");
    assert_eq!(failed, 0, "no request fails across the hand-over: {last}");
    assert_eq!(s.vip_holder(), Some("px1"));
    // The old proxy drains and exits, and the lab reaps it: no zombie.
    let old_ended = wait(Duration::from_secs(15), || {
        s.follow_upgrades();
        !std::path::Path::new(&format!("/proc/{old}")).exists()
    });
    assert!(
        old_ended.is_some(),
        "the old proxy (pid {old}) exits after its drain and is reaped"
    );
    // Stopping "px1-proxy" now stops the proxy that serves, not the old PID:
    // its health track fails and px2 takes the VIP.
    let t = Instant::now();
    s.stop_component("px1-proxy", "TERM").unwrap();
    let stopped = t.elapsed();
    assert!(!s.running("px1-proxy"));
    let moved = wait(Duration::from_secs(10), || s.vip_holder() == Some("px2"));
    println!(
        "story 7: the old proxy ended {old_ended:?} after the hand-over; the successor \
         stopped by name in {stopped:?}, VIP on px2 {moved:?} later"
    );
    assert!(
        moved.is_some(),
        "the stopped successor was the proxy serving on px1"
    );
}

#[test]
fn redis_down_gives_clear_503s_and_the_service_recovers_by_itself() {
    let mut s = Stack::start("e2eredis");
    let mut cookie = None;
    session(&s, &mut cookie).unwrap();
    s.stop_component("redis", "TERM").unwrap();
    let t = Instant::now();
    let r = s.get("/session", cookie.as_deref()).unwrap();
    println!(
        "story 5: Redis stopped: /session answered {} after {:?}: {}",
        r.status,
        t.elapsed(),
        r.body.trim()
    );
    assert!(r.status == 503 || r.status == 502, "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "must not hang");
    s.start_component("redis").unwrap();
    let t = Instant::now();
    let recovered = wait(Duration::from_secs(20), || {
        s.get("/session", None).is_ok_and(|r| r.status == 200)
    });
    println!(
        "story 5: Redis restarted: service back after {:?}",
        recovered.map(|_| t.elapsed())
    );
    assert!(
        recovered.is_some(),
        "backends must reconnect to Redis by themselves"
    );
}

#[test]
fn backend_sees_the_real_client_and_the_host_with_its_port() {
    let s = Stack::start("e2eecho");
    let r = s
        .request(
            "GET",
            "http://192.0.2.88/echo?x=1",
            None,
            None,
            &["Host: test.example.com:8080", "X-Forwarded-For: 6.6.6.6"],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let v = json(&r);
    let h = &v["headers"];
    println!(
        "story 6: backend saw host={} x-real-ip={} x-forwarded-for={} forwarded={}",
        h["host"], h["x-real-ip"], h["x-forwarded-for"], h["forwarded"]
    );
    assert_eq!(h["host"], "test.example.com:8080", "Host keeps its port");
    assert_eq!(h["x-real-ip"], "192.0.2.10", "the real client address");
    let xff = h["x-forwarded-for"].as_str().unwrap();
    assert!(xff.ends_with("192.0.2.10"), "{xff}");
    assert!(
        !xff.contains("6.6.6.6"),
        "an untrusted client's X-Forwarded-For is not kept: {xff}"
    );
    assert!(
        v["peer"].as_str().unwrap().starts_with("192.0.2.13"),
        "the TCP peer is a proxy: {v}"
    );
}
