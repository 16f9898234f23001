//! The real `stackd proxy` process: SIGHUP reload under continuous requests
//! (zero failures), a bad file rejected while the old config keeps serving,
//! access log lines, and SIGTERM draining to exit code 0.
//!
//! Backends and client are plain std threads and sockets so this test needs
//! no dependency beyond std; every process it starts is killed by PID on drop.

#![allow(clippy::unwrap_used)] // test code

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A keep-alive HTTP/1.1 backend answering every request with its name.
fn backend(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut line = String::new();
                    // Read one request head.
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                        name.len()
                    );
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One GET on a fresh connection: (status line, body).
fn get(addr: SocketAddr, path: &str) -> Result<(String, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: sighup.test\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let status = out.lines().next().unwrap_or("").to_owned();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

struct Stackd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Stackd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

fn config(listen: SocketAddr, admin: SocketAddr, backend: SocketAddr) -> String {
    format!(
        "[proxy]\nlisten = [\"{listen}\"]\nadmin = \"{admin}\"\naccess_log = \"json\"\nshutdown_grace = \"5s\"\n\n\
         [[proxy.upstream]]\nname = \"app\"\nservers = [ {{ addr = \"{backend}\" }} ]\n\n\
         [[proxy.route]]\npath = \"/\"\nupstream = \"app\"\n"
    )
}

/// Polls `f` every 50 ms, at most 300 times (15 s).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn sighup_reload_under_load_and_sigterm_drain() {
    let (a, b) = (backend("a"), backend("b"));
    let (listen, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("stackd-proxy-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stackd.toml");
    let log = dir.join("stderr.log");
    std::fs::write(&file, config(listen, admin, a)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_stackd"))
        .args(["--log-format", "json", "proxy", "--config"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut p = Stackd { child, dir };
    let pid = p.child.id();
    wait_for("the proxy to serve a", || {
        get(listen, "/").is_ok_and(|(_, b)| b == "a")
    });

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match get(listen, "/") {
                        Ok((s, _)) if s.starts_with("HTTP/1.1 200") => {
                            ok.fetch_add(1, Ordering::Relaxed)
                        }
                        other => {
                            eprintln!("failed: {other:?}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    thread::sleep(Duration::from_millis(300));
    std::fs::write(&file, config(listen, admin, b)).unwrap();
    signal(pid, "-HUP");
    wait_for("the reload to reach b", || {
        get(listen, "/").is_ok_and(|(_, body)| body == "b")
    });

    // A broken file: rejected, logged, and b keeps serving.
    std::fs::write(&file, "[proxy]\nlisten = [\"nonsense\"]\n").unwrap();
    signal(pid, "-HUP");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(get(listen, "/").unwrap().1, "b");

    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().unwrap());
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("SIGHUP under load: {ok} requests ok, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 20, "too few requests: {ok}");

    let (status, body) = get(admin, "/status").unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(body.contains(&b.to_string()), "{body}");

    signal(pid, "-TERM");
    let mut code = None;
    wait_for("stackd to exit after SIGTERM", || {
        code = p.child.try_wait().unwrap();
        code.is_some()
    });
    let code = code.unwrap();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(code.success(), "exit {code:?}\n{logs}");
    assert!(logs.contains("reload rejected"), "{logs}");
    assert!(
        logs.contains("\"target\":\"access\""),
        "access log lines: {logs}"
    );
    assert!(logs.contains("\"status\":200"), "{logs}");
}
