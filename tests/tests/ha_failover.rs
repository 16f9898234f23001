//! Two `stackd ha` nodes in network namespaces: election, crash failover
//! with gratuitous ARP seen by the client, restart cleanup and preemption,
//! and SIGTERM switchover after Skew_Time instead of Master_Down_Interval.

use std::time::Duration;

use stackd_e2e::ha::*;
use stackd_testkit::poll;

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn v3_100ms_elect_crash_restart_preempt_switchover() {
    let ha = Ha::new("haf");
    let px1 = ha.stackd("px1", &ha_config(100, 3, ""));
    ha.stackd("px2", &ha_config(99, 3, ""));
    assert!(
        poll(S(5), || ha.only("px1")).is_some(),
        "px1 (priority 100) must win the election"
    );
    assert!(poll(S(2), || ha.status("px2").contains("\"state\": \"BACKUP\"")).is_some());
    let st = ha.status("px2");
    assert!(st.contains("\"master\": \"192.0.2.133\""), "{st}");
    assert!(st.contains("\"effective_priority\": 99"), "{st}");

    // Crash: kill -9 the master. The VIP must move and px2 must announce it.
    let capture = ha.capture_arp();
    ha.lab.signal(px1, "KILL").expect("kill -9");
    let took = poll(S(3), || ha.has_vip("px2")).expect("px2 takes the VIP after a crash");
    println!("v3 100ms crash failover (kill -9 -> VIP on px2, polled): {took:?}");
    let mac2 = ha.mac("px2");
    let garp = format!("{mac2} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has {VIP} (ff:ff:ff:ff:ff:ff) tell {VIP}");
    let seen = poll(S(3), || {
        std::fs::read_to_string(&capture)
            .unwrap_or_default()
            .matches(&garp)
            .count()
            >= 5
    });
    assert!(
        seen.is_some(),
        "5 gratuitous ARPs from px2 ({mac2}) on the client:\n{}",
        std::fs::read_to_string(&capture).unwrap_or_default()
    );

    // Restart px1: it removes the VIP its crashed run left behind, then preempts.
    assert!(ha.has_vip("px1"), "kill -9 leaves the stale VIP on px1");
    let px1 = ha.stackd("px1", &ha_config(100, 3, ""));
    let took = poll(S(5), || ha.only("px1")).expect("px1 preempts back");
    println!("v3 100ms restart + preemption back to px1: {took:?}");

    // Planned switchover: SIGTERM sends priority 0.
    ha.lab.signal(px1, "TERM").expect("SIGTERM");
    let took = poll(S(3), || ha.only("px2")).expect("px2 takes over after SIGTERM");
    println!("v3 100ms SIGTERM switchover (polled): {took:?}");
    assert!(ha.lab.wait_exit(px1, S(5)), "stackd exits on SIGTERM");
    assert!(!ha.has_vip("px1"), "VIPs are removed on exit");
    assert!(ha.log("px2").contains("from=BACKUP to=MASTER"));
}

#[test]
fn v3_1s_sigterm_switchover_takes_skew_time_not_master_down_interval() {
    // With 1 s adverts, Master_Down_Interval is 3.6 s and Skew_Time 0.6 s for
    // priority 99: far enough apart to tell them apart on a loaded machine.
    let ha = Ha::new("has");
    let slow = "advert_int = \"1s\"\n";
    let cfg = |p| ha_config(p, 3, "").replace("advert_int = \"100ms\"\n", slow);
    let px1 = ha.stackd("px1", &cfg(100));
    ha.stackd("px2", &cfg(99));
    assert!(poll(S(8), || ha.only("px1")).is_some());
    assert!(poll(S(3), || ha.status("px2").contains("\"state\": \"BACKUP\"")).is_some());
    ha.lab.signal(px1, "TERM").expect("SIGTERM");
    let took = poll(S(6), || ha.has_vip("px2")).expect("px2 takes over");
    println!("v3 1s SIGTERM switchover: {took:?} (skew 0.61 s, Master_Down_Interval 3.61 s)");
    assert!(
        took < Duration::from_millis(2500),
        "took {took:?}: that is Master_Down_Interval, not Skew_Time"
    );
}

#[test]
fn unicast_peers_elect_and_fail_over() {
    // Clouds without multicast: adverts go to the listed peer only.
    let ha = Ha::new("hau");
    let px1 = ha.stackd(
        "px1",
        &ha_config(100, 3, "unicast_peers = [\"192.0.2.135\"]\n"),
    );
    ha.stackd(
        "px2",
        &ha_config(99, 3, "unicast_peers = [\"192.0.2.133\"]\n"),
    );
    assert!(
        poll(S(5), || ha.only("px1")).is_some(),
        "px1 wins over unicast"
    );
    assert!(poll(S(3), || ha
        .status("px2")
        .contains("\"master\": \"192.0.2.133\""))
    .is_some());
    ha.lab.signal(px1, "TERM").expect("SIGTERM");
    let took = poll(S(3), || ha.only("px2")).expect("px2 takes over");
    println!("v3 100ms unicast SIGTERM switchover: {took:?}");
}
