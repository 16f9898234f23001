//! `stackd lab` as a new user runs it: the whole stack comes up on loopback,
//! a session continues across both backends, survives `kill` of one of them
//! (the PID the lab printed), the status page reports it, a SIGUSR2 upgrade
//! of the proxy is followed, and Ctrl-C (SIGINT)
//! stops every process the lab started.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::SocketAddr;
use std::time::Duration;

use stackd_e2e::lab::LoopbackLab;
use stackd_testkit::http::{self, Reply};
use stackd_testkit::poll;
use stackd_testkit::process::Signal;

/// GET `path` on 127.0.0.1:`port`, carrying `cookie` (`name=value`).
fn get(port: u16, path: &str, cookie: &Option<String>) -> std::io::Result<Reply> {
    let c = cookie
        .as_ref()
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: lab\r\n{c}Connection: close\r\n\r\n");
    http::send(SocketAddr::from(([127, 0, 0, 1], port)), req.as_bytes())
}

fn field<'a>(body: &'a str, key: &str) -> &'a str {
    let k = format!("\"{key}\":");
    let rest = body.split_once(&k).map(|(_, r)| r).unwrap_or("");
    rest.split([',', '}'])
        .next()
        .unwrap_or("")
        .trim_matches('"')
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn lab_serves_one_session_across_backends_and_stops_what_it_started() {
    let mut lab = LoopbackLab::start();
    let (proxy, status) = (lab.port("open"), lab.port("status"));
    let pids: Vec<u32> = ["backend", "proxy", "sessions"]
        .iter()
        .flat_map(|what| {
            lab.banner
                .iter()
                .filter(move |l| l.trim_start().starts_with(what))
                .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        })
        .collect();
    assert_eq!(pids.len(), 4, "proxy, 2 backends, redis: {:#?}", lab.banner);
    let victim = lab.pid("try: kill");

    let mut cookie = None;
    let mut nodes = std::collections::BTreeSet::new();
    for i in 1..=6u32 {
        let r = get(proxy, "/session", &cookie).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(field(&r.body, "visits"), i.to_string(), "{}", r.body);
        nodes.insert(field(&r.body, "node").to_owned());
        cookie = r.cookie().or(cookie);
    }
    assert_eq!(
        nodes.len(),
        2,
        "round robin should reach both backends: {nodes:?}"
    );

    // The PID the lab printed, as a user would type it: the lab started it.
    stackd_testkit::process::signal(victim, Signal::SIGTERM);
    let mut failed = 0;
    for i in 7..=26u32 {
        match get(proxy, "/session", &cookie) {
            Ok(r) if r.status == 200 => {
                assert_eq!(
                    field(&r.body, "visits"),
                    (i - failed).to_string(),
                    "{}",
                    r.body
                );
                cookie = r.cookie().or(cookie);
            }
            _ => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("lab: requests failed after killing a backend: {failed} of 20");
    assert_eq!(failed, 0, "GETs must be retried on the surviving backend");

    stackd_testkit::wait_until(
        "the status page showing the killed backend down",
        Duration::from_secs(10),
        || get(status, "/lab.json", &None).is_ok_and(|r| r.body.contains("\"ok\": false")),
    );
    let page = get(status, "/", &None).unwrap();
    assert!(
        page.status == 200 && page.body.contains("data-mode=\"lab\""),
        "{}",
        page.body
    );

    // A binary upgrade, as OPERATIONS.md says: the lab follows the new
    // proxy (as systemd does, by MAINPID=) and stops it at the end.
    // Twice: the second hands over from a process the lab did not start.
    let mut pids = pids;
    let mut old_proxy = lab.pid("proxy");
    for _ in 0..2 {
        stackd_testkit::process::signal(old_proxy, Signal::SIGUSR2);
        let said = lab.wait_line("proxy upgraded", Duration::from_secs(30));
        let new_proxy: u32 = said
            .rsplit("pid ")
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no new pid in {said:?}"));
        assert!(said.contains(&format!("pid {old_proxy} handed")), "{said}");
        let gone = || !std::path::Path::new(&format!("/proc/{old_proxy}")).exists();
        poll(Duration::from_secs(10), gone);
        assert!(
            gone(),
            "the old proxy did not exit after the hand-over, or the lab did not reap it"
        );
        let r = get(proxy, "/session", &cookie).unwrap();
        assert_eq!(r.status, 200, "served by the new proxy: {}", r.body);
        pids.push(new_proxy);
        old_proxy = new_proxy;
    }

    // Ctrl-C, as a user stops it.
    lab.guard.signal(Signal::SIGINT);
    assert!(
        lab.guard.wait_exit(Duration::from_secs(15)).is_some(),
        "lab did not stop on SIGINT"
    );
    poll(Duration::from_secs(2), || pids.iter().all(|p| !alive(*p)));
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "processes still running after the lab stopped: {left:?}"
    );
}
