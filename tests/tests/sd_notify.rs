//! systemd's protocol, seen from a test `NOTIFY_SOCKET` (issue #13): what
//! `stackd proxy`, `stackd ha` and `stackd demo-backend` tell a
//! `Type=notify` unit (READY=1 once serving, RELOADING=1/READY=1 around a
//! reload, ERRNO= when the file was rejected, STOPPING=1, WATCHDOG=1 from
//! ha's loop), and `LISTEN_FDS` socket activation: a connection made
//! before the proxy runs waits in the socket's queue and is served.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // blocking tests measure with the std clock

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackd_e2e::ha::{ha_config, Ha};
use stackd_testkit::backend::Named;
use stackd_testkit::http::get;
use stackd_testkit::process::Signal;
use stackd_testkit::{free_addr, stackd_bin, wait_until, Guard};

/// A `NOTIFY_SOCKET` collecting every message.
struct Notify {
    path: std::path::PathBuf,
    got: Arc<Mutex<Vec<String>>>,
}

impl Notify {
    fn new(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        Notify { path, got }
    }

    fn all(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }

    /// Waits for a message containing `what` after the first `after` ones;
    /// returns the count up to and including it.
    fn wait(&self, what: &str, after: usize) -> usize {
        let mut at = 0;
        let found = stackd_testkit::poll(Duration::from_secs(15), || {
            match self.all().iter().skip(after).position(|m| m.contains(what)) {
                Some(i) => {
                    at = after + i + 1;
                    true
                }
                None => false,
            }
        });
        assert!(
            found.is_some(),
            "no {what:?} after message {after}: {:?}",
            self.all()
        );
        at
    }
}

fn proxy_config(listen: SocketAddr, admin: SocketAddr, backend: SocketAddr) -> String {
    format!(
        "[proxy]\nlisten = [\"{listen}\"]\nadmin = \"{admin}\"\n\n\
         [[proxy.upstream]]\nname = \"app\"\nservers = [ {{ addr = \"{backend}\" }} ]\nhealth = {{ path = \"/\", interval = \"300ms\" }}\n\n\
         [[proxy.route]]\npath = \"/\"\nupstream = \"app\"\n"
    )
}

#[test]
fn proxy_and_demo_backend_notify_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let n = Notify::new(dir.path());
    let be = Named::start("a");
    let (listen, admin) = (free_addr(), free_addr());
    let file = dir.path().join("stackd.toml");
    std::fs::write(&file, proxy_config(listen, admin, be.addr)).unwrap();
    let mut p = Guard::spawn_logged(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["proxy", "--config"])
            .arg(&file)
            .env("NOTIFY_SOCKET", &n.path),
        &dir.path().join("proxy.log"),
    );
    let seen = n.wait("READY=1", 0);
    assert!(
        be.requests() >= 1,
        "READY=1 only after the first health round"
    );
    p.signal(Signal::SIGHUP);
    let seen = n.wait("READY=1", n.wait("RELOADING=1", seen));
    std::fs::write(&file, "[proxy]\nlisten = [\"nonsense\"]\n").unwrap();
    p.signal(Signal::SIGHUP);
    let seen = n.wait("ERRNO=", seen);
    p.signal(Signal::SIGTERM);
    n.wait("STOPPING=1", seen);
    assert!(p
        .wait_exit(Duration::from_secs(15))
        .is_some_and(|s| s.success()));
    let proxy = n.all();
    assert!(
        proxy.iter().any(|m| m.contains("MONOTONIC_USEC=")),
        "{proxy:?}"
    );

    // demo-backend: READY=1 once it listens, STOPPING=1 on SIGTERM.
    let before = n.all().len();
    let redis = stackd_testkit::redis::RedisProc::server();
    let addr = free_addr();
    let mut d = Guard::spawn_logged(
        "stackd demo-backend",
        Command::new(stackd_bin())
            .args([
                "demo-backend",
                "--node-id",
                "n1",
                "--listen",
                &addr.to_string(),
                "--redis",
                &redis.url(),
            ])
            .env("NOTIFY_SOCKET", &n.path),
        &dir.path().join("demo.log"),
    );
    let seen = n.wait("READY=1", before);
    assert!(get(addr, "/healthz").is_ok_and(|r| r.status == 200));
    d.signal(Signal::SIGTERM);
    n.wait("STOPPING=1", seen);
    assert!(d.wait_exit(Duration::from_secs(15)).is_some());
    println!(
        "sd_notify: proxy sent {proxy:?}; demo-backend sent {:?}",
        &n.all()[before..]
    );
}

#[test]
fn ha_notifies_ready_feeds_the_watchdog_and_reloads() {
    let ha = Ha::new("zdnotify");
    let n = Notify::new(&ha.dir);
    let cfg = ha.dir.join("px1.toml");
    std::fs::write(&cfg, ha_config(100, 3, "")).unwrap();
    let log = std::fs::File::create(ha.dir.join("px1.log")).unwrap();
    let mut cmd = ha.lab.command(
        "px1",
        &[&stackd_bin().display().to_string(), "ha", "--config"],
    );
    cmd.arg(&cfg)
        .env("NOTIFY_SOCKET", &n.path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let pid = ha.lab.spawn(cmd).unwrap();
    let seen = n.wait("READY=1", 0);
    std::thread::sleep(Duration::from_millis(1600));
    let dogs = n.all().iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(dogs >= 2, "WATCHDOG=1 every 500 ms: {:?}", n.all());
    stackd_testkit::process::signal(pid, Signal::SIGHUP);
    let seen = n.wait("READY=1", n.wait("RELOADING=1", seen));
    std::fs::write(&cfg, "[ha]\nbroken = 1\n").unwrap();
    stackd_testkit::process::signal(pid, Signal::SIGHUP);
    let seen = n.wait("ERRNO=", seen);
    stackd_testkit::process::signal(pid, Signal::SIGTERM);
    n.wait("STOPPING=1", seen);
    println!(
        "sd_notify: ha sent {} messages, {dogs} WATCHDOG=1 in 1.6 s: {:?}",
        n.all().len(),
        n.all()
            .iter()
            .filter(|m| !m.contains("WATCHDOG"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn socket_activation_serves_the_connections_queued_before_the_proxy_ran() {
    let dir = tempfile::tempdir().unwrap();
    let be = Named::start("a");
    let (listen, admin) = (free_addr(), free_addr());
    let file = dir.path().join("stackd.toml");
    std::fs::write(&file, proxy_config(listen, admin, be.addr)).unwrap();
    // systemd-socket-activate binds, and starts the proxy on the first
    // connection with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID).
    let _p = Guard::spawn_logged(
        "systemd-socket-activate",
        Command::new("systemd-socket-activate")
            .args(["-l", &listen.to_string(), "--fdname=http"])
            .arg(stackd_bin())
            .args(["proxy", "--config"])
            .arg(&file),
        &dir.path().join("proxy.log"),
    );
    wait_until("the socket bound", Duration::from_secs(10), || {
        std::net::TcpStream::connect(listen).is_ok()
    });
    let r = get(listen, "/").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "a"));
    let log = std::fs::read_to_string(dir.path().join("proxy.log")).unwrap();
    assert!(log.contains("using inherited listening socket"), "{log}");
    println!("socket activation: the connection made before the proxy ran was answered 200 on the inherited socket");
}
