//! `stackd ctl` against a real `stackd proxy`, as an operator takes one
//! server out for maintenance: `drain` lets the request in flight finish and
//! sends nothing new there; `disable` also stops its health checks; `enable`
//! puts it back. The state survives a reload.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stackd_testkit::backend::{read_request, Named, Scripted};
use stackd_testkit::http::get;
use stackd_testkit::process::stackd;
use stackd_testkit::process::Signal;
use stackd_testkit::{free_addr, poll, stackd_bin, wait_until, Guard};

/// Server "a": `/slow` answers after 1.5 s, `/healthz` is counted, anything
/// else answers "a" at once. Keep-alive, as the proxy's pool expects.
struct SlowA {
    backend: Scripted,
    requests: Arc<AtomicUsize>,
    probes: Arc<AtomicUsize>,
}

fn slow_a() -> SlowA {
    let (requests, probes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, p) = (requests.clone(), probes.clone());
    let backend = Scripted::start(move |mut conn: TcpStream| {
        let mut buf = Vec::new();
        while let Ok(Some(used)) = read_request(&mut conn, &mut buf) {
            let head = String::from_utf8_lossy(&buf[..used]).into_owned();
            buf.drain(..used);
            if head.starts_with("GET /healthz") {
                p.fetch_add(1, Ordering::Relaxed);
            } else {
                r.fetch_add(1, Ordering::Relaxed);
            }
            if head.starts_with("GET /slow") {
                std::thread::sleep(Duration::from_millis(1500));
            }
            let ok = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na");
            if ok.is_err() {
                return;
            }
        }
    });
    SlowA {
        backend,
        requests,
        probes,
    }
}

fn config(listen: SocketAddr, admin: SocketAddr, a: SocketAddr, b: SocketAddr) -> String {
    format!(
        "[proxy]\nlisten = [\"{listen}\"]\nadmin = \"{admin}\"\naccess_log = \"off\"\n\n\
         [[proxy.upstream]]\nname = \"app\"\nservers = [ {{ addr = \"{a}\" }}, {{ addr = \"{b}\" }} ]\n\
         health = {{ path = \"/healthz\", interval = \"100ms\", fall = 2, rise = 1 }}\n\n\
         [[proxy.route]]\npath = \"/\"\nupstream = \"app\"\n"
    )
}

fn ctl(config: &Path, action: &str, server: &str) -> (i32, String) {
    let config = config.to_string_lossy();
    let r = stackd(["ctl", "--config", &config, action, "app", server]);
    (r.code, r.output())
}

fn admin_state(admin: SocketAddr, server: SocketAddr) -> String {
    let v = get(admin, "/status").unwrap().json();
    v["upstreams"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addr"] == server.to_string())
        .map(|s| s["admin_state"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

#[test]
fn drain_disable_enable_one_server() {
    let (a, b) = (slow_a(), Named::start("b"));
    let (listen, admin) = (free_addr(), free_addr());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stackd.toml");
    std::fs::write(&file, config(listen, admin, a.backend.addr, b.addr)).unwrap();
    let proxy = Guard::spawn_logged(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["proxy", "--config"])
            .arg(&file),
        &dir.path().join("proxy.log"),
    );
    wait_until("both servers serving", Duration::from_secs(15), || {
        let bodies: Vec<String> = (0..4)
            .filter_map(|_| get(listen, "/").ok().map(|r| r.body))
            .collect();
        bodies.iter().any(|x| x == "a") && bodies.iter().any(|x| x == "b")
    });

    // Four slow requests at once. Each worker walks round robin with its
    // own cursor (as nginx workers do), so whichever worker takes two of
    // them sends one to each server: one is in flight on "a" when it is
    // drained.
    let in_flight: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || get(listen, "/slow")))
        .collect();
    poll(Duration::from_secs(2), || {
        a.requests.load(Ordering::Relaxed) > 0
    });
    let a_addr = a.backend.addr.to_string();
    let (code, out) = ctl(&file, "drain", &a_addr);
    println!("stackd ctl drain: exit {code}: {out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("drain (was enable)"), "{out}");
    let bodies: Vec<String> = in_flight
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .map(|r| format!("{} {}", r.status, r.body))
        .collect();
    assert!(
        bodies.contains(&"200 a".to_owned()),
        "the in-flight request on a finished: {bodies:?}"
    );

    let before = a.requests.load(Ordering::Relaxed);
    for _ in 0..20 {
        assert_eq!(get(listen, "/").unwrap().body, "b");
    }
    assert_eq!(
        a.requests.load(Ordering::Relaxed),
        before,
        "no new request reached the drained server"
    );
    assert_eq!(admin_state(admin, a.backend.addr), "drain");
    let probes = a.probes.load(Ordering::Relaxed);
    poll(Duration::from_secs(2), || {
        a.probes.load(Ordering::Relaxed) > probes + 2
    });
    assert!(
        a.probes.load(Ordering::Relaxed) > probes,
        "a drained server is still health-checked"
    );

    // The state lives with the server: a reload keeps it.
    proxy.signal(Signal::SIGHUP);
    proxy.wait_log("config reloaded", Duration::from_secs(5));
    assert_eq!(admin_state(admin, a.backend.addr), "drain");

    let (code, out) = ctl(&file, "disable", &a_addr);
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(Duration::from_millis(300)); // a probe already running may land
    let probes = a.probes.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(600)); // 6 probe intervals
    assert_eq!(
        a.probes.load(Ordering::Relaxed),
        probes,
        "a disabled server is not probed"
    );

    let (code, out) = ctl(&file, "enable", &a_addr);
    assert_eq!(code, 0, "{out}");
    wait_until("a back in rotation", Duration::from_secs(5), || {
        get(listen, "/").is_ok_and(|r| r.body == "a")
    });

    // Mistakes say what is known.
    let (code, out) = ctl(&file, "drain", "192.0.2.1:80");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("has no server 192.0.2.1:80"), "{out}");
}
