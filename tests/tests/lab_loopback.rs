//! `stackd lab` as a new user runs it: the whole stack comes up on loopback,
//! a session continues across both backends, survives `kill` of one of them
//! (the PID the lab printed), the status page reports it, and Ctrl-C (SIGINT)
//! stops every process the lab started.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // a blocking test has no tokio clock to pause

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stackd_testkit::http::{self, Reply};
use stackd_testkit::process::Signal;
use stackd_testkit::{poll, stackd_bin, Guard};

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
    let mut lab = Guard::spawn(
        "stackd lab",
        Command::new(stackd_bin())
            .args(["lab", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let stdout = lab.child().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !banner.iter().any(|l: &String| l.contains("try: kill")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("lab did not print its banner within 60s");
        banner.push(line);
    }
    let find = |prefix: &str| -> String {
        banner
            .iter()
            .find(|l| l.trim_start().starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no {prefix} in {banner:#?}"))
    };
    let port_of = |line: &str| -> u16 {
        line.split("127.0.0.1:")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let proxy = port_of(&find("open"));
    let status = port_of(&find("status"));
    let pids: Vec<u32> = banner
        .iter()
        .filter(|l| {
            l.trim_start().starts_with("backend")
                || l.trim_start().starts_with("proxy")
                || l.trim_start().starts_with("sessions")
        })
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 4, "proxy, 2 backends, redis: {banner:#?}");
    let victim: u32 = find("try: kill")
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();

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

    // Ctrl-C, as a user stops it.
    lab.signal(Signal::SIGINT);
    assert!(
        lab.wait_exit(Duration::from_secs(15)).is_some(),
        "lab did not stop on SIGINT"
    );
    poll(Duration::from_secs(2), || pids.iter().all(|p| !alive(*p)));
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "processes still running after the lab stopped: {left:?}"
    );
}
