//! `stackd check` across tables and hosts: one test per rule, each showing
//! that the rule fires (with its arithmetic and file:line:column) and that it
//! stays quiet on the nearest good file. The shipped px1/px2 files are the
//! starting point, edited one value at a time.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use stackd_testkit::process::stackd_in;

struct Run {
    code: i32,
    err: String,
}

fn shipped(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/hosts")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

/// `text` with `from` (which must occur once) replaced by `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

/// Writes the files into a fresh directory and checks them together.
fn check(files: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let mut args = vec!["check"];
    for p in &paths {
        args.extend(["--config", p.file_name().and_then(|n| n.to_str()).unwrap()]);
    }
    let r = stackd_in(dir.path(), &args);
    Run {
        code: r.code,
        err: r.stderr,
    }
}

/// Where `stackd check` points for a value: `line:column` (1-based) of the
/// first `value` after the last `key` in `text`. Computed from the edited
/// text, so an edit to a shipped host file does not break these tests.
fn at(text: &str, key: &str, value: &str) -> String {
    let key_at = text.rfind(key).unwrap_or_else(|| panic!("no {key:?}"));
    let after = key_at + key.len();
    let off = after
        + text[after..]
            .find(value)
            .unwrap_or_else(|| panic!("no {value:?} after {key:?}"));
    let line = text[..off].matches('\n').count() + 1;
    let column = off - text[..off].rfind('\n').map_or(0, |nl| nl + 1) + 1;
    format!("{line}:{column}")
}

#[track_caller]
fn fires(r: &Run, code: i32, needles: &[&str]) {
    assert_eq!(r.code, code, "{}", r.err);
    for n in needles {
        assert!(r.err.contains(n), "no {n:?} in:\n{}", r.err);
    }
}

#[track_caller]
fn quiet(r: &Run, needle: &str) {
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!r.err.contains(needle), "{needle:?} fired:\n{}", r.err);
}

#[test]
fn a_track_weight_that_cannot_move_the_vip() {
    let px2 = shipped("px2.toml");
    let with = |w: &str| {
        edit(
            &shipped("px1.toml"),
            "weight = 0 }",
            &format!("weight = {w} }}"),
        )
    };
    let r = check(&[("px1.toml", &with("1")), ("px2.toml", &px2)]);
    let weight = at(&with("1"), "weight = ", "1");
    fires(
        &r,
        0,
        &[
            &format!("warning: px1.toml:{weight}: ha.instance[0].track[0].weight:"),
            "priority 100 − weight 1 = 99 is not below the peer's priority 99",
            "a tie goes to the higher primary address",
            "use a weight above 1",
        ],
    );
    quiet(
        &check(&[("px1.toml", &with("2")), ("px2.toml", &px2)]),
        "the VIP never moves",
    );
    // weight 0 means FAULT: the VIP always moves.
    quiet(
        &check(&[("px1.toml", &with("0")), ("px2.toml", &px2)]),
        "the VIP never moves",
    );
}

#[test]
fn a_track_that_is_not_this_hosts_proxy() {
    let px1 = shipped("px1.toml");
    let other = edit(
        &px1,
        "http://127.0.0.1:9090/healthz",
        "http://127.0.0.1:9099/healthz",
    );
    let r = check(&[("px1.toml", &other), ("px2.toml", &shipped("px2.toml"))]);
    let track = at(&other, "track = ", "[");
    let line = track.split(':').next().unwrap();
    fires(
        &r,
        0,
        &[
            &format!("warning: px1.toml:{line}:"),
            "ha.instance[0].track[0].http: http://127.0.0.1:9099/healthz is not this host's proxy admin listener 127.0.0.1:9090",
        ],
    );
    let none = edit(
        &px1,
        "track = [ { http = \"http://127.0.0.1:9090/healthz\", interval = \"500ms\", fall = 2, rise = 2, weight = 0 } ]",
        "",
    );
    let r = check(&[("px1.toml", &none), ("px2.toml", &shipped("px2.toml"))]);
    fires(
        &r,
        0,
        &["instance \"VI_1\" does not track this host's proxy"],
    );
    quiet(
        &check(&[("px1.toml", &px1), ("px2.toml", &shipped("px2.toml"))]),
        "proxy admin listener",
    );
}

#[test]
fn a_failover_slower_than_the_proxys_timeouts() {
    let px1 = shipped("px1.toml");
    let slow = edit(
        &px1,
        "admin = \"127.0.0.1:9090\"",
        "admin = \"127.0.0.1:9090\"\nconnect_timeout = \"2s\"",
    );
    let r = check(&[("px1.toml", &slow), ("px2.toml", &shipped("px2.toml"))]);
    let advert = at(&slow, "advert_int = ", "\"1s\"");
    fires(
        &r,
        0,
        &[
            &format!("warning: px1.toml:{advert}: ha.instance[0].advert_int:"),
            "Master_Down_Interval = 3 × 1s + (256 − 100) / 256 s = 3.609s (version 2), longer than proxy.connect_timeout = 2s",
        ],
    );
    let fine = edit(
        &px1,
        "admin = \"127.0.0.1:9090\"",
        "admin = \"127.0.0.1:9090\"\nconnect_timeout = \"4s\"",
    );
    quiet(
        &check(&[("px1.toml", &fine), ("px2.toml", &shipped("px2.toml"))]),
        "Master_Down_Interval",
    );
}

#[test]
fn two_vrrp_versions_on_one_vrid_and_interface() {
    let second = |vrid: u8| {
        format!(
            "{}\n[[ha.instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\nvirtual_router_id = {vrid}\npriority = 100\nversion = 3\nadvert_int = \"100ms\"\nvirtual_ipaddress = [\"192.168.50.89/24\"]\ntrack = [ {{ http = \"http://127.0.0.1:9090/healthz\" }} ]\n",
            shipped("px1.toml")
        )
    };
    let r = check(&[
        ("px1.toml", &second(51)),
        ("px2.toml", &shipped("px2.toml")),
    ]);
    let vrid = at(&second(51), "virtual_router_id = ", "51");
    fires(
        &r,
        64,
        &[
            &format!("px1.toml:{vrid}: ha.instance[1].virtual_router_id: VRID 51 on eth0 is also used by instance \"VI_1\" (VRRPv3 here, v2 there)"),
            "00:00:5e:00:01:33",
            "1 error(s)",
        ],
    );
    quiet(
        &check(&[
            ("px1.toml", &second(52)),
            ("px2.toml", &shipped("px2.toml")),
        ]),
        "is also used by",
    );
}

#[test]
fn sessions_that_expire_during_a_failover() {
    let be1 = |ttl: &str| {
        edit(
            &shipped("be1.toml"),
            "session_ttl = \"1800s\"",
            &format!("session_ttl = \"{ttl}\""),
        )
    };
    let r = check(&[("px1.toml", &shipped("px1.toml")), ("be1.toml", &be1("2s"))]);
    let ttl = at(&be1("2s"), "\nsession_ttl = ", "\"2s\"");
    fires(
        &r,
        0,
        &[
            &format!("warning: be1.toml:{ttl}: demo_backend.session_ttl: sessions idle for 2s expire, but a failover of instance \"VI_1\" takes up to Master_Down_Interval = 3 × 1s + (256 − 100) / 256 s = 3.609s"),
        ],
    );
    quiet(
        &check(&[
            ("px1.toml", &shipped("px1.toml")),
            ("be1.toml", &be1("1800s")),
        ]),
        "sessions idle",
    );
}

/// One host's file, checked on that host: `lo` is an interface every Linux has.
fn ha_on_this_host(interface: &str, notify: &Path) -> String {
    format!(
        "[ha]\n[[ha.instance]]\nname = \"VI_1\"\ninterface = \"{interface}\"\nvirtual_router_id = 51\npriority = 100\nvirtual_ipaddress = [\"192.0.2.88/24\"]\nnotify = \"{}\"\n",
        notify.display()
    )
}

#[test]
fn interfaces_this_host_does_not_have() {
    let r = check(&[(
        "h.toml",
        &ha_on_this_host("nosuch0", Path::new("/bin/true")),
    )]);
    fires(
        &r,
        64,
        &["h.toml:4:13: ha.instance[0].interface: this host has no interface \"nosuch0\""],
    );
    quiet(
        &check(&[("h.toml", &ha_on_this_host("lo", Path::new("/bin/true")))]),
        "no interface",
    );
}

#[test]
fn notify_programs_missing_or_not_executable() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("notify.sh");
    let r = check(&[("h.toml", &ha_on_this_host("lo", &script))]);
    fires(
        &r,
        64,
        &[
            "h.toml:8:10: ha.instance[0].notify: notify program",
            "does not exist",
        ],
    );
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = check(&[("h.toml", &ha_on_this_host("lo", &script))]);
    fires(&r, 64, &["is not executable (mode 644); chmod +x it"]);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    quiet(
        &check(&[("h.toml", &ha_on_this_host("lo", &script))]),
        "notify program",
    );
}

/// A self-signed EC certificate and its key, made by openssl.
fn cert_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test.example",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    (cert, key)
}

#[test]
fn tls_files_that_do_not_load_or_do_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let (c1, k1) = cert_pair(dir.path(), "one");
    let (_, k2) = cert_pair(dir.path(), "two");
    let proxy = |cert: &Path, key: &Path| {
        format!(
            "[proxy]\nlisten = [{{ addr = \"127.0.0.1:8443\", tls = true }}]\n\n[[proxy.tls]]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        )
    };
    let r = check(&[("p.toml", &proxy(&c1, &k2))]);
    fires(
        &r,
        64,
        &[
            "p.toml:4:1: proxy.tls[0]:",
            "does not belong to the certificate in",
        ],
    );
    let r = check(&[("p.toml", &proxy(&dir.path().join("none.crt"), &k1))]);
    fires(
        &r,
        64,
        &["p.toml:4:1: proxy.tls[0]: TLS setup: cannot read certificate"],
    );
    quiet(&check(&[("p.toml", &proxy(&c1, &k1))]), "proxy.tls");
}

#[test]
fn a_value_that_does_not_parse_hides_nothing() {
    // The example: virtual_ipaddress = ["not-an-ip"] used to hide priority = 300.
    let bad = edit(
        &edit(&shipped("px1.toml"), "priority = 100", "priority = 300"),
        "[\"192.168.50.88/24\"]",
        "[\"not-an-ip\"]",
    );
    let r = check(&[("px1.toml", &bad), ("px2.toml", &shipped("px2.toml"))]);
    let priority = at(&bad, "priority = ", "300");
    let vip = at(&bad, "virtual_ipaddress = [", "\"not-an-ip\"");
    fires(
        &r,
        64,
        &[
            &format!("px1.toml:{priority}: ha.instance[0].priority: 300 is outside 1..=254"),
            &format!("px1.toml:{vip}: ha.instance[0].virtual_ipaddress[0]:"),
            "2 error(s)",
        ],
    );
}
