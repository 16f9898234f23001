//! VRRPv3 over IPv6 (RFC 5798 §5.1.2): adverts to ff02::12 from the
//! link-local address, an IPv6 VIP, and unsolicited Neighbor Advertisements
//! seen by the client when the VIP moves.

use std::time::Duration;

use stackd_e2e::ha::*;
use stackd_testkit::poll;

const S: fn(u64) -> Duration = Duration::from_secs;
const VIP6: &str = "2001:db8::88";

fn has_vip6(ha: &Ha, host: &str) -> bool {
    ha.lab
        .exec(host, &["ip", "-6", "-o", "addr", "show", "dev", "eth0"])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP6}/64")))
        .unwrap_or(false)
}

/// Link-local addresses are tentative until DAD finishes; raw sockets cannot bind before.
fn link_local_ready(ha: &Ha, host: &str) -> bool {
    ha.lab
        .exec(
            host,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
            ],
        )
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            s.contains("fe80::") && !s.contains("tentative")
        })
        .unwrap_or(false)
}

#[test]
fn v3_ipv6_elect_and_fail_over_with_unsolicited_na() {
    let ha = Ha::new("ha6");
    for h in ["px1", "px2", "cl"] {
        assert!(
            poll(S(10), || link_local_ready(&ha, h)).is_some(),
            "{h}: link-local address never left DAD"
        );
    }
    let cfg =
        |p| ha_config(p, 3, "").replace(&format!("[\"{VIP}/24\"]"), &format!("[\"{VIP6}/64\"]"));
    let px1 = ha.stackd("px1", &cfg(100));
    ha.stackd("px2", &cfg(99));
    assert!(
        poll(S(5), || has_vip6(&ha, "px1") && !has_vip6(&ha, "px2")).is_some(),
        "px1 wins over IPv6"
    );
    assert!(
        poll(S(3), || ha.status("px2").contains("\"master\": \"fe80::")).is_some(),
        "{}",
        ha.status("px2")
    );

    let out = ha.dir.join("na.txt");
    let err = ha.dir.join("na.err");
    let mut cmd = ha
        .lab
        .command("cl", &["tcpdump", "-i", "eth0", "-n", "-l", "-U", "icmp6"]);
    cmd.stdout(std::fs::File::create(&out).expect("na.txt"))
        .stderr(std::fs::File::create(&err).expect("na.err"));
    ha.lab.spawn(cmd).expect("tcpdump");
    assert!(poll(S(5), || std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("listening on"))
    .is_some());

    ha.lab.signal(px1, "KILL").expect("kill -9");
    let took = poll(S(3), || has_vip6(&ha, "px2")).expect("px2 takes the IPv6 VIP");
    println!("v3 100ms IPv6 crash failover: {took:?}");
    let na = format!("neighbor advertisement, tgt is {VIP6}");
    let seen = poll(S(3), || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .matches(&na)
            .count()
            >= 5
    });
    assert!(
        seen.is_some(),
        "unsolicited NAs on the client:\n{}",
        std::fs::read_to_string(&out).unwrap_or_default()
    );
}
