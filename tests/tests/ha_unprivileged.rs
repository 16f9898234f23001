//! `stackd ha` as the shipped unit runs it: an unprivileged user holding
//! only CAP_NET_RAW and CAP_NET_ADMIN as ambient capabilities (here set up
//! by setpriv instead of systemd). It wins the election, holds and gives up
//! the VIP, and its notify script runs without those capabilities.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use stackd_e2e::ha::*;
use stackd_testkit::poll;

const S: fn(u64) -> Duration = Duration::from_secs;

/// nobody, with the two capabilities as ambient ones and nothing else.
const AS_NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all,+net_raw,+net_admin",
    "--ambient-caps=-all,+net_raw,+net_admin",
    "--bounding-set=-all,+net_raw,+net_admin",
    "--",
];

#[test]
fn ha_runs_unprivileged_with_two_capabilities() {
    let ha = Ha::new("hun");
    let out = ha.dir.join("notify-out");
    std::fs::create_dir_all(&out).expect("dir");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let script = ha.dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$3 uid=$(id -u) $(grep CapAmb /proc/self/status)\" >> {}/calls\n",
            out.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let px1 = ha.stackd_as(
        "px1",
        &ha_config(100, 3, &format!("notify = \"{}\"\n", script.display())),
        AS_NOBODY,
    );
    ha.stackd("px2", &ha_config(99, 3, ""));
    assert!(poll(S(5), || ha.only("px1")).is_some(), "{}", ha.log("px1"));
    let status = std::fs::read_to_string(format!("/proc/{px1}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or("")
            .to_owned()
    };
    assert!(field("Uid:").contains("65534"), "{status}");
    assert!(
        field("CapEff:").ends_with("0000000000003000"),
        "only NET_ADMIN|NET_RAW: {status}"
    );

    let calls = out.join("calls");
    let ran = poll(S(5), || {
        std::fs::read_to_string(&calls).is_ok_and(|c| c.contains("MASTER"))
    });
    let text = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(ran.is_some(), "notify ran: {text:?}\n{}", ha.log("px1"));
    assert!(
        text.contains("MASTER uid=65534 CapAmb:\t0000000000000000"),
        "{text}"
    );

    // SIGTERM: priority 0, the VIP is removed (CAP_NET_ADMIN) and STOP runs.
    ha.lab.signal(px1, "TERM").expect("SIGTERM");
    assert!(poll(S(3), || ha.only("px2")).is_some(), "px2 takes over");
    assert!(ha.lab.wait_exit(px1, S(10)), "exits");
    let text = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        text.lines().last().is_some_and(|l| l.starts_with("STOP")),
        "{text}"
    );
}
