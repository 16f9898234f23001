//! Binary upgrade on one host, no VRRP (issue #13): SIGUSR2 to `stackd
//! proxy` starts the binary now at the same path with the same arguments,
//! hands it every listening socket, and drains once it is ready. A client
//! opens a new connection every 5 ms through all of it: a plain upgrade, a
//! new file that is rejected, a binary that is no binary, a move to
//! `workers = 2` (the inherited socket shared by both workers) and an
//! upgrade from workers mode. It prints refused and failed connections and
//! every PID, and fails on any refused or failed request.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // blocking tests measure with the std clock

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stackd_e2e::poller::Poller;
use stackd_testkit::backend::Named;
use stackd_testkit::http::get;
use stackd_testkit::process::{signal, Signal};
use stackd_testkit::{free_addr, stackd_bin, wait_until, Guard};

fn config(listen: SocketAddr, admin: SocketAddr, backend: SocketAddr, workers: usize) -> String {
    format!(
        "[proxy]\nlisten = [\"{listen}\"]\nadmin = \"{admin}\"\nworkers = {workers}\naccess_log = \"off\"\nshutdown_grace = \"5s\"\n\n\
         [[proxy.upstream]]\nname = \"app\"\nservers = [ {{ addr = \"{backend}\" }} ]\nhealth = {{ path = \"/\", interval = \"200ms\" }}\n\n\
         [[proxy.route]]\npath = \"/\"\nupstream = \"app\"\n"
    )
}

/// Processes started by the proxy we started (its successors): killed on
/// the way out if a failed test left them running.
struct Successors(Vec<u32>);

impl Drop for Successors {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                signal(pid, Signal::SIGKILL);
            }
        }
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// PIDs the log says took over, in order.
fn successors(log: &str) -> Vec<u32> {
    log.lines()
        .filter_map(|l| l.split("stops accepting and drains pid=").nth(1))
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// USR2 to `pid`; waits for a new successor in `log` and for `pid` to exit.
fn upgrade(pid: u32, p: &Guard, known: &mut Successors) -> u32 {
    let before = successors(&p.log()).len();
    signal(pid, Signal::SIGUSR2);
    wait_until("a ready successor", Duration::from_secs(30), || {
        successors(&p.log()).len() > before
    });
    let new = successors(&p.log())[before];
    known.0.push(new);
    wait_until("the old process to exit", Duration::from_secs(15), || {
        !alive(pid)
    });
    new
}

/// USR2 that must fail: the same process keeps serving, the log says why.
fn failed_upgrade(pid: u32, p: &Guard, why: &str) {
    let before = p.log().matches("upgrade failed").count();
    signal(pid, Signal::SIGUSR2);
    wait_until("the failure logged", Duration::from_secs(30), || {
        p.log().matches("upgrade failed").count() > before
    });
    assert!(alive(pid), "{why}: the old process must keep serving");
}

#[test]
fn usr2_upgrades_under_load_and_failed_upgrades_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Our own copy of the binary, so the test can replace the file.
    let bin = dir.path().join("stackd");
    std::fs::copy(stackd_bin(), &bin).unwrap();
    let be = Named::start("a");
    let (listen, admin) = (free_addr(), free_addr());
    let file = dir.path().join("stackd.toml");
    std::fs::write(&file, config(listen, admin, be.addr, 0)).unwrap();
    let mut p = Guard::spawn_logged(
        "stackd proxy",
        Command::new(&bin).args(["proxy", "--config"]).arg(&file),
        &dir.path().join("stackd.log"),
    );
    wait_until("the proxy serving", Duration::from_secs(15), || {
        get(listen, "/").is_ok_and(|r| r.status == 200)
    });
    let mut known = Successors(Vec::new());
    let first = p.pid();
    let client = Poller::start(
        None,
        listen,
        "/",
        Duration::from_millis(5),
        Duration::from_secs(120),
    );
    std::thread::sleep(Duration::from_millis(500));

    let second = upgrade(first, &p, &mut known);
    std::thread::sleep(Duration::from_millis(500));

    std::fs::write(&file, "[proxy]\nlisten = [\"nonsense\"]\n").unwrap();
    failed_upgrade(second, &p, "a rejected file");
    std::fs::write(&file, config(listen, admin, be.addr, 0)).unwrap();

    replace(&bin, b"this is not a program\n");
    failed_upgrade(second, &p, "a broken binary");
    std::fs::remove_file(&bin).unwrap();
    std::fs::copy(stackd_bin(), &bin).unwrap();

    std::fs::write(&file, config(listen, admin, be.addr, 2)).unwrap();
    let third = upgrade(second, &p, &mut known);
    std::thread::sleep(Duration::from_millis(500));
    let fourth = upgrade(third, &p, &mut known);
    std::thread::sleep(Duration::from_millis(500));

    let tally = client.stop();
    println!(
        "USR2 upgrades under a new connection every 5 ms: {}; pids {first} -> {second} (then a rejected file and a broken binary: {second} kept serving) -> {third} (workers = 2) -> {fourth} (workers to workers)",
        tally.summary()
    );
    assert_eq!(tally.refused, 0);
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
    assert!(tally.ok > 300, "{}", tally.summary());
    let status = get(admin, "/healthz").unwrap();
    assert_eq!(status.status, 200, "the admin socket came along");

    signal(fourth, Signal::SIGTERM);
    wait_until("the last process to exit", Duration::from_secs(15), || {
        !alive(fourth)
    });
    assert!(
        get(listen, "/").is_err(),
        "nothing listens after the last one"
    );
    let _ = p.wait_exit(Duration::from_secs(1));
}

/// Replaces the file at `path` (a new inode, as a package upgrade does).
fn replace(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
