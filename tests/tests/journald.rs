//! Logs journald understands: when stderr is the stream systemd named in
//! `JOURNAL_STREAM` (device:inode), every line stderr gets starts with its
//! syslog priority, `<3>` for errors ... `<7>` for debug, checked on the raw
//! bytes (multi-line messages included). When JOURNAL_STREAM names another
//! file, nothing is prefixed.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stackd_testkit::process::Signal;
use stackd_testkit::{free_addr, stackd_bin, Guard};

fn journal_stream_of(path: &Path) -> String {
    std::fs::write(path, b"").unwrap();
    let m = std::fs::metadata(path).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

fn proxy_config(dead_upstream: std::net::SocketAddr) -> String {
    format!(
        "[proxy]\nlisten = [\"{}\"]\nadmin = \"{}\"\n\n[[proxy.upstream]]\nname = \"gone\"\nservers = [{{ addr = \"{dead_upstream}\" }}]\nhealth = {{ interval = \"100ms\", timeout = \"100ms\", fall = 1, rise = 1 }}\n\n[[proxy.route]]\nupstream = \"gone\"\n",
        free_addr(),
        free_addr()
    )
}

#[test]
fn every_stderr_line_carries_its_priority_under_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let cfg = dir.path().join("p.toml");
    std::fs::write(&cfg, proxy_config(free_addr())).unwrap();
    let stream = journal_stream_of(&log);
    let mut p = Guard::spawn_logged(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["--log-level", "debug", "proxy", "--config"])
            .arg(&cfg)
            .env("JOURNAL_STREAM", &stream)
            .env_remove("RUST_LOG"),
        &log,
    );
    // A warning: the only server fails its health check.
    p.wait_log("<4>", Duration::from_secs(10));
    // SIGUSR1, which logrotate sends by habit, is logged, not fatal.
    p.signal(Signal::SIGUSR1);
    p.wait_log("SIGUSR1", Duration::from_secs(5));
    assert!(p.running(), "SIGUSR1 must not kill the proxy");
    // An error over several lines: a reload with two bad values.
    std::fs::write(
        &cfg,
        "[proxy]\nlisten = [\"nowhere\"]\nworkers = \"many\"\n",
    )
    .unwrap();
    p.signal(Signal::SIGHUP);
    p.wait_log("reload rejected", Duration::from_secs(10));
    p.wait_log("workers", Duration::from_secs(5));
    p.signal(Signal::SIGTERM);
    assert!(
        p.wait_exit(Duration::from_secs(15)).is_some(),
        "proxy did not stop"
    );

    let raw = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&raw);
    println!("raw stderr under JOURNAL_STREAM:\n{text}");
    assert!(!raw.is_empty());
    for line in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let ok = line.len() > 3
            && line[0] == b'<'
            && (b'0'..=b'7').contains(&line[1])
            && line[2] == b'>';
        assert!(
            ok,
            "line without a priority: {:?}",
            String::from_utf8_lossy(line)
        );
    }
    for (prio, what) in [
        ("<3>", "error"),
        ("<4>", "warning"),
        ("<6>", "info"),
        ("<7>", "debug"),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(prio)),
            "no {what} line ({prio}):\n{text}"
        );
    }
    // The multi-line rejection: each of its lines is an error line.
    let rejected: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("reload rejected"))
        .take(3)
        .collect();
    assert!(
        rejected.iter().all(|l| l.starts_with("<3>")),
        "{rejected:#?}"
    );
    assert!(!text.contains("\x1b["), "no colours for the journal");
}

#[test]
fn the_last_words_are_an_error_line_and_other_files_get_no_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        format!("[proxy]\nlisten = [\"{}\"]\n", busy.local_addr().unwrap()),
    )
    .unwrap();
    let log = dir.path().join("stderr");
    let stream = journal_stream_of(&log);
    let mut p = Guard::spawn_logged(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["proxy", "--config"])
            .arg(&cfg)
            .env("JOURNAL_STREAM", &stream),
        &log,
    );
    let status = p.wait_exit(Duration::from_secs(10)).expect("proxy exits");
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("<3>stackd: "), "{text}");
    // Said once, not three times (issue 15).
    assert_eq!(text.matches("cannot listen on").count(), 1, "{text}");

    // Same run with JOURNAL_STREAM naming a different file: plain lines.
    let other = dir.path().join("other");
    let wrong = journal_stream_of(&other);
    let log2 = dir.path().join("stderr2");
    let mut p = Guard::spawn_logged(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["proxy", "--config"])
            .arg(&cfg)
            .env("JOURNAL_STREAM", &wrong),
        &log2,
    );
    p.wait_exit(Duration::from_secs(10)).expect("proxy exits");
    let text = std::fs::read_to_string(&log2).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .starts_with("stackd: "),
        "{text}"
    );
    assert!(!text.contains("<3>") && !text.contains("<6>"), "{text}");
}
