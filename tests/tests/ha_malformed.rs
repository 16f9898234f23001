//! Hostile packets from the client namespace are ignored, counted by reason
//! in `/metrics` and `/status`, and change nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use stackd_e2e::ha::*;
use stackd_testkit::poll;
use stackd_vrrp::packet::{Advert, Auth, Version};

const S: fn(u64) -> Duration = Duration::from_secs;

/// Sends `payload` once from cl to `dst` with `ttl`.
fn inject(ha: &Ha, dst: &str, ttl: u8, payload: &[u8]) {
    ha.inject(dst, ttl, &[payload.to_vec()], Duration::ZERO, 1);
}

fn advert(vrid: u8, priority: u8, vip: Ipv4Addr) -> Vec<u8> {
    let a = Advert {
        version: Version::V3,
        vrid,
        priority,
        interval_cs: 10,
        addrs: vec![IpAddr::V4(vip)],
        auth: Auth::None,
    };
    a.encode(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 135)),
    )
}

#[test]
fn malformed_packets_are_ignored_and_counted() {
    let ha = Ha::new("ham");
    ha.stackd("px1", &ha_config(100, 3, ""));
    ha.stackd("px2", &ha_config(99, 3, ""));
    assert!(poll(S(5), || ha.only("px1")).is_some());
    assert!(poll(S(3), || ha.status("px2").contains("\"state\": \"BACKUP\"")).is_some());
    let transitions_before = ha.status("px2");

    let vip = Ipv4Addr::new(192, 0, 2, 88);
    // Would win (priority 254) if it were accepted: each must be refused.
    let good = advert(51, 254, vip);
    inject(&ha, "192.0.2.135", 64, &good); // off-link TTL
    let mut bad_sum = good.clone();
    bad_sum[7] ^= 0xff;
    inject(&ha, "192.0.2.135", 255, &bad_sum);
    inject(&ha, "192.0.2.135", 255, &good[..4]); // truncated
    let mut v4 = good.clone();
    v4[0] = 0x41;
    inject(&ha, "192.0.2.135", 255, &v4);
    inject(&ha, "192.0.2.135", 255, &advert(52, 254, vip));
    inject(
        &ha,
        "192.0.2.135",
        255,
        &advert(51, 254, Ipv4Addr::new(192, 0, 2, 99)),
    );
    inject(&ha, "192.0.2.135", 255, &[0x3f; 40]); // v3, type 15

    let m = |reason: &str| {
        format!(
            "stackd_vrrp_rejected_packets_total{{vrrp_instance=\"VI_1\",reason=\"{reason}\"}} 1"
        )
    };
    let want = [
        "bad_ttl",
        "bad_checksum",
        "truncated",
        "bad_version",
        "other_vrid",
        "address_mismatch",
        "bad_type",
    ];
    let ok = poll(S(3), || {
        let metrics = ha.metrics("px2");
        want.iter().all(|r| metrics.contains(&m(r)))
    });
    assert!(ok.is_some(), "{}", ha.metrics("px2"));
    let st = ha.status("px2");
    assert!(st.contains("\"bad_checksum\": 1"), "{st}");
    assert!(st.contains("\"state\": \"BACKUP\""), "{st}");
    let count = |s: &str| {
        s.lines()
            .find(|l| l.contains("\"transitions\""))
            .map(str::to_owned)
    };
    assert_eq!(
        count(&st),
        count(&transitions_before),
        "no transition caused by junk"
    );
    assert!(ha.only("px1"), "the master is undisturbed");

    // A valid, higher-priority advert is the control: it is accepted.
    inject(&ha, "192.0.2.135", 255, &good);
    assert!(poll(S(2), || ha.metrics("px2").contains(
        "stackd_vrrp_adverts_received_total{vrrp_instance=\"VI_1\"}"
    ))
    .is_some());
}
