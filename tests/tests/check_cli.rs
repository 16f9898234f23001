//! `stackd check` as an operator uses it: a broken file fails with exit
//! code 64 and every problem located as file:line:column. (That every
//! shipped config passes is in deploy_files.rs, with its secret files.)
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use stackd_testkit::process::stackd;

fn check(path: &std::path::Path) -> (i32, String, String) {
    let r = stackd(["check".as_ref(), "--config".as_ref(), path.as_os_str()]);
    (r.code, r.stdout, r.stderr)
}

#[test]
fn a_broken_config_lists_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[ha]\n[[ha.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 300\nadvert_int = \"1500ms\"\nvirtual_ipaddress = [\"192.0.2.88/24\"]\n",
    )
    .unwrap();
    let (code, _, err) = check(&path);
    assert_eq!(code, 64, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(
        lines[2],
        "stackd check: 2 error(s), 0 warning(s): test failed"
    );
    assert!(
        lines[0].contains("bad.toml:6:12: ha.instance[0].priority: 300 is outside 1..=254"),
        "{err}"
    );
    assert!(
        lines[1].contains(
            "bad.toml:7:14: ha.instance[0].advert_int: VRRPv2 advertises in whole seconds"
        ),
        "{err}"
    );
}

#[test]
fn a_missing_file_says_so() {
    let (code, _, err) = check(std::path::Path::new("/nonexistent/stackd.toml"));
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("cannot read config file /nonexistent/stackd.toml"),
        "{err}"
    );
}

#[test]
fn help_describes_real_options() {
    for (sub, needle) in [
        ("proxy", "--config"),
        ("ha", "CAP_NET_ADMIN"),
        ("demo-backend", "--node-id"),
        ("lab", "--netns"),
    ] {
        let r = stackd([sub, "--help"]);
        assert!(
            r.code == 0 && r.stdout.contains(needle) && r.stdout.contains("--log-format"),
            "{sub}: {}",
            r.output()
        );
    }
}

#[test]
fn completions_cover_every_subcommand_in_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef stackd"),
        ("fish", "complete -c stackd"),
    ] {
        let r = stackd(["completions", shell]);
        let text = &r.stdout;
        assert!(r.code == 0 && text.contains(marker), "{shell}: {text}");
        for sub in ["proxy", "ha", "check", "status", "ctl", "lab"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
}

#[test]
fn man_pages_are_written_for_every_subcommand_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = stackd(["manpages".as_ref(), dir.path().as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for page in [
        "stackd.1",
        "stackd-proxy.1",
        "stackd-ha.1",
        "stackd-demo-backend.1",
        "stackd-check.1",
        "stackd-status.1",
        "stackd-ctl.1",
        "stackd-completions.1",
        "stackd-lab.1",
        "stackd.toml.5",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            text.starts_with(".TH") || text.contains("\n.TH"),
            "{page} is not roff"
        );
    }
    let check = std::fs::read_to_string(dir.path().join("stackd-check.1")).unwrap();
    assert!(
        check.contains("Exit status"),
        "stackd-check(1) documents its exit codes"
    );
}
