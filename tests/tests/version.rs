//! Which build is running, asked two ways: `stackd --version` (version, git
//! commit, build date) and the `stackd_build_info` metric on an admin
//! listener, which must name the same commit; the process metrics are there
//! too.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use stackd_testkit::{free_addr, http, stackd_bin, wait_until, Guard};

#[test]
fn version_and_build_info_name_the_same_build() {
    let out = Command::new(stackd_bin())
        .arg("--version")
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // stackd 0.1.0 (commit 0123456789ab, built 2026-11-26)
    let version = env!("CARGO_PKG_VERSION");
    assert!(v.starts_with(&format!("stackd {version} (commit ")), "{v}");
    let commit = v
        .split("(commit ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{v}"
    );
    let date = v.split("built ").nth(1).unwrap().trim_end_matches(')');
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        "{v}"
    );

    let dir = tempfile::tempdir().unwrap();
    let admin: SocketAddr = free_addr();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "[proxy]\nlisten = [\"{}\"]\nadmin = \"{admin}\"\n",
            free_addr()
        ),
    )
    .unwrap();
    let _proxy = Guard::spawn(
        "stackd proxy",
        Command::new(stackd_bin())
            .args(["proxy", "--config"])
            .arg(&cfg),
    );
    let mut metrics = String::new();
    wait_until(
        "the proxy's /metrics",
        Duration::from_secs(10),
        || match http::get(admin, "/metrics") {
            Ok(r) if r.status == 200 => {
                metrics = r.body;
                true
            }
            _ => false,
        },
    );
    let want = format!("stackd_build_info{{version=\"{version}\",commit=\"{commit}\"}} 1");
    assert!(metrics.contains(&want), "no {want} in:\n{metrics}");
    for m in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(metrics.contains(m), "no {m} in:\n{metrics}");
    }
}
