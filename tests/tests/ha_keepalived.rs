//! Interop with the real keepalived (Debian package) in both roles, for
//! VRRPv2 with PASS auth at 1 s and VRRPv3 at 100 ms: each side accepts the
//! other's adverts, priority-0 on SIGTERM hands over in Skew_Time, and the
//! returning higher priority preempts.

use std::time::Duration;

use stackd_e2e::ha::*;
use stackd_testkit::poll;

const S: fn(u64) -> Duration = Duration::from_secs;

fn interop(tag: &str, version: u8) {
    let ha = Ha::new(tag);
    let v = format!("v{version}");
    // The slowest startup: keepalived backup, 3 x 1 s + skew, then our MDI.
    let converge = S(12);

    // Role A: keepalived is MASTER (px1, 100), stackd is BACKUP (px2, 99).
    let k = ha.keepalived("px1", &keepalived_config(100, version));
    let s = ha.stackd("px2", &ha_config(99, version, ""));
    assert!(
        poll(converge, || ha.only("px1")).is_some(),
        "{v}: keepalived px1 must be master"
    );
    let st = poll(S(5), || {
        ha.status("px2").contains("\"master\": \"192.0.2.133\"")
    });
    assert!(
        st.is_some(),
        "{v}: stackd follows keepalived's adverts: {}",
        ha.status("px2")
    );
    assert!(ha.status("px2").contains("\"state\": \"BACKUP\""));
    assert!(
        ha.status("px2").contains("\"rejected\": {}"),
        "{v}: no keepalived advert was rejected: {}",
        ha.status("px2")
    );
    ha.lab.signal(k, "TERM").expect("SIGTERM keepalived");
    let took = poll(S(5), || ha.only("px2")).expect("stackd takes over from a stopping keepalived");
    println!("{v}: keepalived MASTER SIGTERM -> stackd MASTER: {took:?}");
    assert!(ha.lab.wait_exit(k, S(10)), "keepalived exits");

    // keepalived comes back with the higher priority and preempts stackd.
    let k = ha.keepalived("px1", &keepalived_config(100, version));
    let took = poll(converge, || ha.only("px1")).expect("keepalived preempts back");
    println!("{v}: keepalived restart -> preempts stackd: {took:?}");
    assert!(
        ha.log("px2").contains("from=MASTER to=BACKUP"),
        "{v}: stackd yielded to keepalived's advert"
    );

    // Role B: stackd is MASTER (px1, 100), keepalived is BACKUP (px2, 99).
    ha.lab.signal(k, "TERM").expect("SIGTERM keepalived");
    ha.lab.signal(s, "TERM").expect("SIGTERM stackd");
    assert!(ha.lab.wait_exit(k, S(10)) && ha.lab.wait_exit(s, S(10)));
    let s = ha.stackd("px1", &ha_config(100, version, ""));
    let k = ha.keepalived("px2", &keepalived_config(99, version));
    assert!(
        poll(converge, || ha.only("px1")).is_some(),
        "{v}: stackd px1 must be master"
    );
    // keepalived must accept our adverts: if it did not, it would take the VIP
    // after its Master_Down_Interval. Watch for longer than that.
    let hold = if version == 3 {
        Duration::from_millis(1500)
    } else {
        S(5)
    };
    assert!(
        poll(hold, || ha.has_vip("px2")).is_none(),
        "{v}: keepalived stayed BACKUP under stackd's adverts"
    );
    assert!(ha.only("px1"));
    ha.lab.signal(s, "TERM").expect("SIGTERM stackd");
    let took = poll(S(5), || ha.only("px2")).expect("keepalived takes over from a stopping stackd");
    println!("{v}: stackd MASTER SIGTERM -> keepalived MASTER: {took:?}");
    assert!(
        took < S(2),
        "{v}: keepalived honoured our priority-0 advert ({took:?})"
    );
    let _ = k;
}

#[test]
fn keepalived_interop_v2_pass_1s() {
    interop("hak", 2);
}

#[test]
fn keepalived_interop_v3_100ms() {
    interop("hal", 3);
}
