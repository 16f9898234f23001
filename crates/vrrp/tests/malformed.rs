//! Hostile input: decoding and validation never panic, and each kind of
//! damage maps to its own reject reason.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use proptest::prelude::*;
use stackd_vrrp::packet::{pass, Advert, Auth, Version};
use stackd_vrrp::validate::{receive_v4, Expect};

mod support;

fn expect() -> Expect {
    Expect {
        version: Version::V3,
        vrid: 51,
        auth: None,
        adver_int: Duration::from_millis(100),
        vips: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88))],
        own: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 135))],
        peers: vec![],
    }
}

/// A valid IPv4+VRRPv3 datagram from 192.0.2.133 with `ttl`.
fn datagram(ttl: u8) -> Vec<u8> {
    support::v3_datagram(
        Ipv4Addr::new(192, 0, 2, 133),
        Ipv4Addr::new(192, 0, 2, 88),
        100,
        ttl,
    )
}

fn reason(buf: &[u8]) -> Result<u8, &'static str> {
    receive_v4(buf, &expect())
        .map(|(_, a)| a.priority)
        .map_err(|r| r.label())
}

#[test]
fn each_damage_has_its_reason() {
    assert_eq!(reason(&datagram(255)), Ok(100));
    assert_eq!(reason(&datagram(64)), Err("bad_ttl"));
    let mut d = datagram(255);
    d[9] = 17;
    assert_eq!(reason(&d), Err("bad_protocol"));
    let mut d = datagram(255);
    d[20] = 0x41;
    assert_eq!(reason(&d), Err("bad_version"));
    let mut d = datagram(255);
    d[20] = 0x32;
    assert_eq!(reason(&d), Err("bad_type"));
    let mut d = datagram(255);
    d[22] = 101;
    assert_eq!(reason(&d), Err("bad_checksum"));
    let mut d = datagram(255);
    d[23] = 0;
    assert_eq!(reason(&d), Err("no_addresses"));
    let mut d = datagram(255);
    d[23] = 2; // claims two addresses, carries one
    assert_eq!(reason(&d), Err("truncated"));
    assert_eq!(reason(&datagram(255)[..26]), Err("truncated"));
    assert_eq!(reason(&[0x45, 0, 0]), Err("truncated"));
    let mut d = datagram(255);
    d[0] = 0x65;
    assert_eq!(reason(&d), Err("bad_ip_header"));
    let mut d = datagram(255);
    d[15] = 135; // from ourselves
    assert_eq!(reason(&d), Err("own_packet"));
}

/// `datagram(255)` with its v3 interval set to `cs` (checksum fixed).
fn with_interval(cs: u16) -> Vec<u8> {
    let mut d = datagram(255);
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 133));
    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    let vrrp = &mut d[20..];
    vrrp[4] = (cs >> 8) as u8 & 0x0f;
    vrrp[5] = cs as u8;
    vrrp[6] = 0;
    vrrp[7] = 0;
    let sum = stackd_vrrp::checksum::with_pseudo_header(src, dst, vrrp);
    vrrp[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

#[test]
fn v3_interval_zero_is_refused_and_the_extremes_pass() {
    // Interval 0 would make Master_Down_Interval 0: one forged packet, one flip.
    assert_eq!(reason(&with_interval(0)), Err("bad_interval"));
    assert_eq!(reason(&with_interval(1)), Ok(100));
    assert_eq!(reason(&with_interval(4095)), Ok(100));
}

#[test]
fn unicast_accepts_only_configured_peers() {
    let peers = |p: Vec<IpAddr>| Expect {
        peers: p,
        ..expect()
    };
    let from_133 = datagram(255);
    let only_140 = peers(vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 140))]);
    assert_eq!(
        receive_v4(&from_133, &only_140)
            .map(|_| ())
            .map_err(|r| r.label()),
        Err("not_a_peer")
    );
    let with_133 = peers(vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 133))]);
    assert!(receive_v4(&from_133, &with_133).is_ok());
}

#[test]
fn every_reason_label_is_listed_once() {
    let labels = stackd_vrrp::validate::Reject::LABELS;
    let mut unique = labels.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), labels.len(), "{labels:?}");
    for l in ["bad_interval", "not_a_peer", "bad_ttl", "own_packet"] {
        assert!(labels.contains(&l), "{l}");
    }
}

#[test]
fn v2_auth_type_2_is_unsupported() {
    let a = Advert {
        version: Version::V2,
        vrid: 51,
        priority: 100,
        interval_cs: 100,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88))],
        auth: Auth::Pass(pass("1111")),
    };
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 133));
    let mut b = a.encode(src, src);
    b[4] = 2;
    b[6] = 0;
    b[7] = 0;
    let sum = stackd_vrrp::checksum::internet(&b);
    b[6..8].copy_from_slice(&sum.to_be_bytes());
    let e = stackd_vrrp::validate::check(
        &b,
        src,
        src,
        &Expect {
            version: Version::V2,
            auth: Some(pass("1111")),
            adver_int: Duration::from_secs(1),
            ..expect()
        },
    );
    assert_eq!(e.map(|_| ()).map_err(|r| r.label()), Err("bad_auth_type"));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = receive_v4(&bytes, &expect());
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let _ = Advert::decode(&bytes, src, src);
        let v6: IpAddr = "2001:db8::1".parse().map_err(|_| TestCaseError::fail("addr"))?;
        let _ = Advert::decode(&bytes, v6, v6);
    }

    #[test]
    fn flipped_bits_never_panic(pos in 0usize..32, bit in 0u8..8) {
        let mut d = datagram(255);
        d[pos] ^= 1 << bit;
        let _ = receive_v4(&d, &expect());
    }

    #[test]
    fn round_trip(vrid in 1u8..=255, prio in 0u8..=255, cs in 1u16..4096, n in 1usize..8, v3 in any::<bool>()) {
        let addrs: Vec<IpAddr> = (0..n).map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8))).collect();
        let a = Advert {
            version: if v3 { Version::V3 } else { Version::V2 },
            vrid, priority: prio,
            interval_cs: if v3 { cs } else { (cs % 256).max(1) * 100 },
            addrs,
            auth: if v3 { Auth::None } else { Auth::Pass(pass("secret")) },
        };
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 133));
        let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
        let b = a.encode(src, dst);
        prop_assert_eq!(Advert::decode(&b, src, dst), Ok(stackd_vrrp::packet::Decoded::Done(a)));
    }
}
