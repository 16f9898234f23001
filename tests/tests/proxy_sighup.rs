//! The real `stackd proxy` process: SIGHUP reload under continuous requests
//! (zero failures), a bad file rejected while the old config keeps serving,
//! access log lines, and SIGTERM draining to exit code 0.
//!
//! Backends and clients are plain threads and sockets; every process this
//! test starts is killed by PID on drop.

#![allow(clippy::unwrap_used)] // test code

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use stackd_testkit::backend::Named;
use stackd_testkit::http::get;
use stackd_testkit::process::Signal;
use stackd_testkit::{free_addr, stackd_bin, wait_until, Guard};

fn config(listen: SocketAddr, admin: SocketAddr, backend: SocketAddr) -> String {
    format!(
        "[proxy]\nlisten = [\"{listen}\"]\nadmin = \"{admin}\"\naccess_log = \"json\"\nshutdown_grace = \"5s\"\n\n\
         [[proxy.upstream]]\nname = \"app\"\nservers = [ {{ addr = \"{backend}\" }} ]\n\n\
         [[proxy.route]]\npath = \"/\"\nupstream = \"app\"\n"
    )
}

fn body_is(addr: SocketAddr, want: &str) -> bool {
    get(addr, "/").is_ok_and(|r| r.body == want)
}

#[test]
fn sighup_reload_under_load_and_sigterm_drain() {
    let (a, b) = (Named::start("a"), Named::start("b"));
    let (listen, admin) = (free_addr(), free_addr());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stackd.toml");
    std::fs::write(&file, config(listen, admin, a.addr)).unwrap();
    let mut p = Guard::spawn_logged(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["--log-format", "json", "proxy", "--config"])
            .arg(&file),
        &dir.path().join("stackd.log"),
    );
    wait_until("the proxy serving a", Duration::from_secs(15), || {
        body_is(listen, "a")
    });

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match get(listen, "/") {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
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
    std::fs::write(&file, config(listen, admin, b.addr)).unwrap();
    p.signal(Signal::SIGHUP);
    wait_until("the reload reaching b", Duration::from_secs(15), || {
        body_is(listen, "b")
    });

    // A broken file: rejected, logged, and b keeps serving.
    std::fs::write(&file, "[proxy]\nlisten = [\"nonsense\"]\n").unwrap();
    p.signal(Signal::SIGHUP);
    p.wait_log("reload rejected", Duration::from_secs(5));
    assert!(body_is(listen, "b"));

    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().unwrap());
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("SIGHUP under load: {ok} requests ok, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 20, "too few requests: {ok}");

    let status = get(admin, "/status").unwrap();
    assert_eq!(status.status, 200, "{status:?}");
    assert!(status.body.contains(&b.addr.to_string()), "{}", status.body);

    p.signal(Signal::SIGTERM);
    let code = p
        .wait_exit(Duration::from_secs(15))
        .expect("stackd exits after SIGTERM");
    let logs = p.log();
    assert!(code.success(), "exit {code:?}\n{logs}");
    assert!(
        logs.contains("\"target\":\"access\""),
        "access log lines: {logs}"
    );
    assert!(logs.contains("\"status\":200"), "{logs}");
}
