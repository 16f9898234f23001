//! `access_log = { path, format }`: the real `stackd proxy` writes one line
//! per request to its own file, and on SIGUSR1 (logrotate's `postrotate`)
//! reopens it, so lines after a rotation land in the new file and none is
//! lost; the process keeps running. A file that cannot be opened on reload
//! is a rejected reload, not a dead proxy.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stackd_testkit::backend::Named;
use stackd_testkit::http::get;
use stackd_testkit::process::Signal;
use stackd_testkit::{free_addr, poll, stackd_bin, wait_until, Guard};

fn config(listen: SocketAddr, backend: SocketAddr, log: &Path) -> String {
    format!(
        "[proxy]\nlisten = [\"{listen}\"]\naccess_log = {{ path = \"{}\", format = \"json\" }}\n\n\
         [[proxy.upstream]]\nname = \"app\"\nservers = [ {{ addr = \"{backend}\" }} ]\n\n\
         [[proxy.route]]\npath = \"/\"\nupstream = \"app\"\n",
        log.display()
    )
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn access_lines_go_to_their_file_and_follow_a_rotation() {
    let backend = Named::start("a");
    let listen = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let (log, rotated) = (
        dir.path().join("access.log"),
        dir.path().join("access.log.1"),
    );
    let file = dir.path().join("stackd.toml");
    std::fs::write(&file, config(listen, backend.addr, &log)).unwrap();
    let mut proxy = Guard::spawn_logged(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["proxy", "--config"])
            .arg(&file),
        &dir.path().join("stderr.log"),
    );
    wait_until("the proxy serving", Duration::from_secs(15), || {
        get(listen, "/").is_ok_and(|r| r.status == 200)
    });
    for _ in 0..2 {
        assert_eq!(get(listen, "/two").unwrap().status, 200);
    }
    poll(Duration::from_secs(2), || lines(&log).len() >= 3);
    let before = lines(&log);
    assert!(before.len() >= 3, "{before:?}");
    let last = &before[before.len() - 1];
    assert_eq!(
        (last["path"].as_str(), last["status"].as_u64()),
        (Some("/two"), Some(200)),
        "{last}"
    );
    assert_eq!(last["upstream"], backend.addr.to_string(), "{last}");
    assert!(
        !proxy.log().contains("\"target\":\"access\"") && !proxy.log().contains("GET /two"),
        "access lines go to their file, not the process log"
    );

    // logrotate: rename, then SIGUSR1.
    std::fs::rename(&log, &rotated).unwrap();
    assert_eq!(get(listen, "/after-rename").unwrap().status, 200);
    // A line is written once its response has gone out, so the client can
    // hold the answer a moment before its line exists: wait for it, or
    // the reopen below could rightly send it to the new file.
    poll(Duration::from_secs(2), || {
        lines(&rotated).len() > before.len()
    });
    proxy.signal(Signal::SIGUSR1);
    // The reopen creates the file; a request sent before it would still
    // go to the renamed one.
    wait_until("the reopened file", Duration::from_secs(5), || log.exists());
    assert_eq!(get(listen, "/after-usr1").unwrap().status, 200);
    poll(Duration::from_secs(2), || !lines(&log).is_empty());
    let old = lines(&rotated);
    assert_eq!(
        old.len(),
        before.len() + 1,
        "the line before SIGUSR1 went to the renamed file"
    );
    assert_eq!(old[old.len() - 1]["path"], "/after-rename");
    let new: Vec<_> = lines(&log).iter().map(|l| l["path"].clone()).collect();
    assert_eq!(
        new,
        ["/after-usr1"],
        "the line after SIGUSR1 went to the new file"
    );
    assert!(proxy.running(), "SIGUSR1 does not stop the proxy");

    // A reload whose log cannot be opened is rejected; the old file stays in use.
    std::fs::write(
        &file,
        config(listen, backend.addr, &dir.path().join("missing/access.log")),
    )
    .unwrap();
    proxy.signal(Signal::SIGHUP);
    proxy.wait_log("cannot open the access log", Duration::from_secs(5));
    let n = lines(&log).len();
    assert_eq!(get(listen, "/still").unwrap().status, 200);
    poll(Duration::from_secs(2), || lines(&log).len() > n);
    assert_eq!(lines(&log)[n]["path"], "/still");
}
