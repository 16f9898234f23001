//! `stackd status` against a live lab, as an operator runs it: everything
//! up and exit 0; then one backend killed (the PID the lab printed), and the
//! same command names the dead server and exits 1.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use stackd_e2e::lab::LoopbackLab;
use stackd_testkit::poll;
use stackd_testkit::process::stackd;
use stackd_testkit::process::Signal;

fn status(config: &Path, json: bool) -> (i32, String) {
    let mut args = vec!["status".as_ref(), "--config".as_ref(), config.as_os_str()];
    if json {
        args.push("--json".as_ref());
    }
    let r = stackd(args);
    (r.code, r.stdout)
}

#[test]
fn status_of_a_live_lab_before_and_after_a_backend_dies() {
    let lab = LoopbackLab::start();
    let config = lab.dir().join("proxy.toml");
    let (code, text) = status(&config, false);
    println!("--- stackd status (all running), exit {code}:\n{text}");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("upstream backends (round_robin)"), "{text}");
    assert_eq!(text.matches(" up    active").count(), 2, "{text}");
    assert!(text.trim_end().ends_with("all up"), "{text}");

    let victim = lab.backend_pid("139server2");
    stackd_testkit::process::signal(victim, Signal::SIGKILL);
    let mut last = (0, String::new());
    poll(Duration::from_secs(10), || {
        last = status(&config, false);
        last.0 != 0
    });
    let (code, text) = last;
    println!("--- stackd status (139server2 killed), exit {code}:\n{text}");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("DOWN"), "{text}");
    assert!(
        text.contains("1 problem(s):") && text.contains("upstream backends: server 127.0.0.1:"),
        "{text}"
    );

    let (code, json) = status(&config, true);
    assert_eq!(code, 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], false, "{json}");
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(v["proxy"]["http_status"], 200, "{json}");
}

#[test]
fn status_says_which_listener_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let port = stackd_testkit::free_port();
    let cfg = dir.path().join("h.toml");
    std::fs::write(
        &cfg,
        format!("[proxy]\nlisten = [\"127.0.0.1:1\"]\nadmin = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let (code, text) = status(&cfg, false);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("proxy admin 127.0.0.1:{port} does not answer")),
        "{text}"
    );
    std::fs::write(&cfg, "[proxy]\nlisten = [\"127.0.0.1:1\"]\n").unwrap();
    let r = stackd(["status".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(r.code, 64, "{}", r.output());
    assert!(
        r.stderr.contains("no admin listener to ask"),
        "{}",
        r.stderr
    );
}
