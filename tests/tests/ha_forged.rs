//! An attacker on the segment (the client namespace, with a raw socket)
//! forges VRRPv3 adverts: interval 0, a stranger in unicast mode, and a
//! flapping stream. The VIP stays where the election put it, every forged
//! packet is counted by reason, and a flapping stream costs a bounded number
//! of notify calls. Also: an operator's typo in `[proxy]` of the same file
//! does not keep `stackd ha` from starting.

use std::net::Ipv4Addr;
use std::time::Duration;

use stackd_e2e::ha::*;
use stackd_testkit::{poll, stackd_bin};

const S: fn(u64) -> Duration = Duration::from_secs;
const PX1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 133);
const PX2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 135);

fn rejected(reason: &str) -> String {
    format!("stackd_vrrp_rejected_packets_total{{vrrp_instance=\"VI_1\",reason=\"{reason}\"}}")
}

fn transitions(status: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(status).ok()?["instances"][0]["transitions"].as_u64()
}

#[test]
fn interval_zero_adverts_are_refused_and_the_vip_stays() {
    let ha = Ha::new("hfz");
    ha.stackd("px1", &ha_config(100, 3, ""));
    ha.stackd("px2", &ha_config(99, 3, ""));
    assert!(poll(S(5), || ha.only("px1")).is_some());
    assert!(poll(S(3), || ha.status("px2").contains("\"state\": \"BACKUP\"")).is_some());
    let (t1, t2) = (
        transitions(&ha.status("px1")),
        transitions(&ha.status("px2")),
    );

    // Priority 254 with Max Advert Interval 0: accepted, it would make
    // Master_Down_Interval 0 on px2 and preempt px1.
    let to1 = forged_v3(254, 0, PX1);
    let to2 = forged_v3(254, 0, PX2);
    ha.inject(
        &PX1.to_string(),
        255,
        std::slice::from_ref(&to1),
        Duration::from_millis(50),
        20,
    );
    ha.inject(
        &PX2.to_string(),
        255,
        std::slice::from_ref(&to2),
        Duration::from_millis(50),
        20,
    );

    for host in ["px1", "px2"] {
        let counted = poll(S(3), || {
            ha.metric(host, &rejected("bad_interval")) == Some(20.0)
        });
        assert!(counted.is_some(), "{host}:\n{}", ha.metrics(host));
    }
    assert!(ha.only("px1"), "the VIP never moved");
    assert_eq!(transitions(&ha.status("px1")), t1, "px1 never left MASTER");
    assert_eq!(transitions(&ha.status("px2")), t2, "px2 never left BACKUP");

    // Control: the same advert with a legal interval does win (the
    // interval, nothing else, was the reason).
    ha.inject(
        &PX1.to_string(),
        255,
        &[forged_v3(254, 10, PX1)],
        Duration::ZERO,
        1,
    );
    // (The preempted px1 keeps its VIP 1 s, and the silent forger is
    // overthrown after Master_Down_Interval: its state says it yielded.)
    assert!(
        poll(S(2), || transitions(&ha.status("px1")) > t1).is_some(),
        "a valid 254 advert preempts"
    );
}

#[test]
fn in_unicast_mode_only_the_peers_are_heard() {
    let ha = Ha::new("hfp");
    ha.stackd(
        "px1",
        &ha_config(
            100,
            3,
            "unicast_src_ip = \"192.0.2.133\"\nunicast_peers = [\"192.0.2.135\"]\n",
        ),
    );
    ha.stackd(
        "px2",
        &ha_config(
            99,
            3,
            "unicast_src_ip = \"192.0.2.135\"\nunicast_peers = [\"192.0.2.133\"]\n",
        ),
    );
    assert!(poll(S(5), || ha.only("px1")).is_some());
    assert!(poll(S(3), || ha.status("px2").contains("\"state\": \"BACKUP\"")).is_some());
    // A valid advert from the client, not a peer: with priority 254 it
    // would take the VIP from px1 and silence px2.
    ha.inject(
        &PX1.to_string(),
        255,
        &[forged_v3(254, 10, PX1)],
        Duration::from_millis(50),
        20,
    );
    ha.inject(
        &PX2.to_string(),
        255,
        &[forged_v3(254, 10, PX2)],
        Duration::from_millis(50),
        20,
    );
    for host in ["px1", "px2"] {
        let counted = poll(S(3), || {
            ha.metric(host, &rejected("not_a_peer")) == Some(20.0)
        });
        assert!(counted.is_some(), "{host}:\n{}", ha.metrics(host));
    }
    assert!(ha.only("px1"), "the VIP never moved");
    let st = ha.status("px2");
    assert!(
        st.contains("\"state\": \"BACKUP\"") && st.contains("\"master\": \"192.0.2.133\""),
        "{st}"
    );
}

#[test]
fn forged_flapping_costs_a_bounded_number_of_notify_calls() {
    let ha = Ha::new("hfn");
    let calls = ha.dir.join("notify.calls");
    let script = ha.dir.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$3\" >> {}\n", calls.display()),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    ha.stackd(
        "px1",
        &ha_config(100, 3, &format!("notify = \"{}\"\n", script.display())),
    );
    assert!(poll(S(5), || ha.has_vip("px1")).is_some());
    let settled = poll(S(5), || {
        std::fs::read_to_string(&calls).is_ok_and(|c| c.lines().last() == Some("MASTER"))
    });
    assert!(settled.is_some(), "MASTER announced once it lasted");
    let t0 = transitions(&ha.status("px1")).expect("status");
    let n0 = std::fs::read_to_string(&calls)
        .unwrap_or_default()
        .lines()
        .count();

    // 10 s of "254 is master" / "254 leaves" every 400 ms: px1 yields, then
    // takes over after Skew_Time, 25 times each way.
    let flap = [forged_v3(254, 10, PX1), forged_v3(0, 10, PX1)];
    ha.inject(&PX1.to_string(), 255, &flap, Duration::from_millis(400), 13);
    assert!(
        poll(S(5), || ha.has_vip("px1")).is_some(),
        "px1 is MASTER again"
    );
    std::thread::sleep(Duration::from_secs(3)); // the last state settles

    let flips = transitions(&ha.status("px1")).expect("status") - t0;
    let text = std::fs::read_to_string(&calls).unwrap_or_default();
    let notified = text.lines().count() - n0;
    println!("forged flapping: {flips} transitions, {notified} notify calls over ~10 s");
    assert!(flips >= 20, "the forgery did flip px1: {flips}");
    assert!(
        notified <= 13,
        "{notified} notify calls for {flips} flips:\n{text}"
    );
    assert_eq!(
        text.lines().last(),
        Some("MASTER"),
        "the last state is announced:\n{text}"
    );
    let coalesced = ha
        .metric(
            "px1",
            "stackd_vrrp_notifications_coalesced_total{vrrp_instance=\"VI_1\"}",
        )
        .unwrap_or(0.0);
    let sent = ha
        .metric(
            "px1",
            "stackd_vrrp_notifications_total{vrrp_instance=\"VI_1\"}",
        )
        .unwrap_or(0.0);
    assert_eq!(
        sent as usize,
        text.lines().count(),
        "every announcement ran the script"
    );
    assert!(
        coalesced >= (flips as f64) - (notified as f64),
        "{coalesced}"
    );
}

#[test]
fn a_typo_in_proxy_does_not_stop_ha() {
    let ha = Ha::new("hft");
    let text = format!(
        "[proxy]\nlisten = [\"0.0.0.0:80\"]\nadmim = \"127.0.0.1:9090\"\n\n{}",
        ha_config(100, 3, "")
    );
    ha.stackd("px1", &text);
    assert!(
        poll(S(5), || ha.has_vip("px1")).is_some(),
        "ha starts and takes the VIP:\n{}",
        ha.log("px1")
    );
    let log = ha.log("px1");
    assert!(log.contains("WARN") && log.contains("proxy.admim"), "{log}");
    // `stackd check` still reports it, with its position.
    let out = std::process::Command::new(stackd_bin())
        .args(["check", "--config"])
        .arg(ha.dir.join("px1.toml"))
        .output()
        .expect("stackd check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("px1.toml:3:1: proxy.admim: unknown field `admim`"),
        "{err}"
    );
}
