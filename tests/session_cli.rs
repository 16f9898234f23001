//! `stackd demo-backend` as a process: starts on a real redis-server, serves
//! the HTTP contract, stops cleanly on SIGTERM, and refuses bad flags with a
//! clear message (a TTL without a unit is refused, never guessed).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed (by PID) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request with `Connection: close`; the whole answer as text.
fn http(port: u16, req: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Redis answers PING without closing the connection: read one reply only.
fn redis_ping(port: u16) -> bool {
    let once = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"PING\r\n")?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf)?;
        Ok(buf[..n].starts_with(b"+PONG"))
    };
    once().unwrap_or(false)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} not reached within 10s");
}

fn redis() -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    let p = Proc(child);
    wait_until("redis PING", || redis_ping(port));
    (p, port)
}

#[test]
fn demo_backend_serves_and_stops_on_sigterm() {
    let (_redis, rport) = redis();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_stackd"))
        .args([
            "demo-backend",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--node-id",
            "cli1",
        ])
        .args([
            "--redis",
            &format!("redis://127.0.0.1:{rport}/"),
            "--session-ttl",
            "90s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut be = Proc(child);
    let get = |path: &str| {
        http(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
    };
    wait_until("/healthz 200", || {
        get("/healthz").is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    let r = get("/session").unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("\"node\":\"cli1\"")
            && r.contains("\"ttl_secs\":90")
            && r.contains("\"visits\":1"),
        "{r}"
    );
    assert!(
        r.to_ascii_lowercase().contains("set-cookie: sessionid=") && r.contains("HttpOnly"),
        "{r}"
    );

    let pid = be.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut status = None;
    wait_until("exit after SIGTERM", || {
        status = be.0.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success(), "{status:?}");
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_stackd"))
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
