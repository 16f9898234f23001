//! `stackd demo-backend` as a process: starts on a real redis-server, serves
//! the HTTP contract, stops cleanly on SIGTERM, and refuses bad flags with a
//! clear message (a TTL without a unit is refused, never guessed).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;
use std::time::Duration;

use stackd_testkit::http::get;
use stackd_testkit::process::Signal;
use stackd_testkit::redis::RedisProc;
use stackd_testkit::{free_addr, stackd_bin, wait_until, Guard};

#[test]
fn demo_backend_serves_and_stops_on_sigterm() {
    let redis = RedisProc::server();
    let addr = free_addr();
    let mut be = Guard::spawn(
        "demo-backend",
        Command::new(stackd_bin())
            .args(["demo-backend", "--listen", &addr.to_string()])
            .args(["--node-id", "cli1", "--redis", &redis.url()])
            .args(["--session-ttl", "90s"]),
    );
    wait_until("/healthz 200", Duration::from_secs(10), || {
        get(addr, "/healthz").is_ok_and(|r| r.status == 200)
    });
    let r = get(addr, "/session").unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(
        (
            v["node"].as_str(),
            v["ttl_secs"].as_u64(),
            v["visits"].as_u64()
        ),
        (Some("cli1"), Some(90), Some(1)),
        "{v}"
    );
    let cookie = r.header("set-cookie").unwrap_or_default();
    assert!(
        cookie.starts_with("SESSIONID=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    be.signal(Signal::SIGTERM);
    let status = be
        .wait_exit(Duration::from_secs(15))
        .expect("exit after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let run = |args: &[&str]| {
        let out = Command::new(stackd_bin())
            .arg("demo-backend")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--node-id", "n1", "--redis", "http://x"]);
    assert!(
        !ok && err.contains("redis") && err.contains("not a session store URL"),
        "{err}"
    );
    let (ok, err) = run(&[
        "--node-id",
        "n1",
        "--redis",
        "memory://",
        "--session-ttl",
        "1800",
    ]);
    assert!(
        !ok && err.contains("no unit"),
        "a bare number is refused, not read as seconds or minutes: {err}"
    );
    let (ok, err) = run(&["--node-id", "bad node", "--redis", "memory://"]);
    assert!(!ok && err.contains("node_id"), "{err}");
}
