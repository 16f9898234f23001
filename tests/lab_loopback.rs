//! `stackd lab` as a new user runs it: the whole stack comes up on loopback,
//! a session continues across both backends, survives `kill` of one of them
//! (the PID the lab printed), the status page reports it, and Ctrl-C (SIGINT)
//! stops every process the lab started.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // a blocking test has no tokio clock to pause

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The lab process, interrupted and reaped on drop (it then stops its children).
struct Lab(Child);

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` with a cookie jar of one cookie; returns (status, body, new cookie).
fn get(
    port: u16,
    path: &str,
    cookie: &Option<String>,
) -> std::io::Result<(u16, String, Option<String>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let c = cookie
        .as_ref()
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: lab\r\n{c}Connection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let set = out
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .and_then(|(_, v)| v.split(';').next())
        .map(|v| v.trim().to_owned());
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body, set))
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackd"))
        .args(["lab", "--port", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lab = Lab(child);
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
        let (code, body, set) = get(proxy, "/session", &cookie).unwrap();
        assert_eq!(code, 200, "{body}");
        assert_eq!(field(&body, "visits"), i.to_string(), "{body}");
        nodes.insert(field(&body, "node").to_owned());
        cookie = set.or(cookie);
    }
    assert_eq!(
        nodes.len(),
        2,
        "round robin should reach both backends: {nodes:?}"
    );

    Command::new("kill")
        .arg(victim.to_string())
        .status()
        .unwrap();
    let mut failed = 0;
    for i in 7..=26u32 {
        match get(proxy, "/session", &cookie) {
            Ok((200, body, set)) => {
                assert_eq!(field(&body, "visits"), (i - failed).to_string(), "{body}");
                cookie = set.or(cookie);
            }
            _ => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("lab: requests failed after killing a backend: {failed} of 20");
    assert_eq!(failed, 0, "GETs must be retried on the surviving backend");

    let mut seen_down = false;
    for _ in 0..50 {
        let (_, page, _) = get(status, "/lab.json", &None).unwrap();
        if page.contains("\"ok\": false") {
            seen_down = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        seen_down,
        "the status page should show the killed backend as down"
    );
    let (code, html, _) = get(status, "/", &None).unwrap();
    assert!(code == 200 && html.contains("stackd lab"), "{html}");

    drop(lab);
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "processes still running after the lab stopped: {left:?}"
    );
}
