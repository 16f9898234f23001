//! Golden packets captured from keepalived 2.2.7 (tests/vectors/, tcpdump -XX
//! from the Ethernet header): our decoder accepts every one of them, and our
//! encoder reproduces their VRRP bytes exactly, checksum included.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use stackd_vrrp::packet::{pass, Advert, Auth, Version};
use stackd_vrrp::validate::{receive_v4, Expect, Reject};

/// One captured frame: the tcpdump summary line and the bytes.
struct Frame {
    summary: String,
    bytes: Vec<u8>,
}

/// Parses tcpdump `-XX` output: a summary, then `0x0000:  0100 5e00 ...` rows.
fn frames(text: &str) -> Vec<Frame> {
    let mut out: Vec<Frame> = Vec::new();
    let mut summary = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("0x") {
            let Some((off, hex)) = rest.split_once(':') else {
                continue;
            };
            if off == "0000" {
                out.push(Frame {
                    summary: summary.clone(),
                    bytes: Vec::new(),
                });
            }
            // Hex groups end where the two-space gap before the ASCII column starts.
            let hex = hex.trim_start();
            let hex = hex.split("  ").next().unwrap_or("");
            let digits: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
            let frame = out.last_mut().expect("hex row before any 0x0000 row");
            for i in (0..digits.len()).step_by(2) {
                frame
                    .bytes
                    .push(u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"));
            }
        } else if !t.is_empty() {
            summary = t.to_owned();
        }
    }
    out
}

fn vrrp_frames() -> Vec<Frame> {
    frames(include_str!("vectors/keepalived-vrrp.txt"))
}

fn expect(version: Version) -> Expect {
    Expect {
        version,
        vrid: 51,
        auth: (version == Version::V2).then(|| pass("1111")),
        adver_int: if version == Version::V2 {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        },
        vips: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88))],
        own: vec![],
        peers: vec![],
    }
}

#[test]
fn every_keepalived_frame_decodes_and_reencodes_identically() {
    let fs = vrrp_frames();
    assert!(
        fs.len() >= 16,
        "expected the captured frames, got {}",
        fs.len()
    );
    let (mut v2, mut v3, mut zero) = (0, 0, 0);
    for f in &fs {
        let ip = &f.bytes[14..];
        let version = if f.summary.contains("VRRPv2") {
            Version::V2
        } else {
            Version::V3
        };
        let (src, a) =
            receive_v4(ip, &expect(version)).unwrap_or_else(|e| panic!("{}: {e}", f.summary));
        assert_eq!(a.version, version);
        assert_eq!(a.vrid, 51);
        let prio: u8 = f
            .summary
            .split("prio ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .expect("prio in summary");
        assert_eq!(a.priority, prio, "{}", f.summary);
        assert!(f.summary.contains(&src.to_string()));
        assert_eq!(a.addrs, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88))]);
        match version {
            Version::V2 => {
                v2 += 1;
                assert_eq!(a.interval_cs, 100);
                assert_eq!(a.auth, Auth::Pass(*b"1111\0\0\0\0"));
            }
            Version::V3 => {
                v3 += 1;
                assert_eq!(a.interval_cs, 10);
                assert_eq!(a.auth, Auth::None);
            }
        }
        if prio == 0 {
            zero += 1;
        }
        // Re-encode: the VRRP part (after the 20-byte IP header) must match byte for byte.
        let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
        assert_eq!(
            a.encode(IpAddr::V4(src), dst),
            ip[20..].to_vec(),
            "{}",
            f.summary
        );
    }
    assert!(v2 >= 8 && v3 >= 8, "v2 {v2} v3 {v3}");
    assert_eq!(zero, 2, "one priority-0 advert per version on SIGTERM");
}

#[test]
fn v2_pass_advert_bytes() {
    // px1, prio 100, 1 s, PASS "1111", VIP 192.0.2.88: from the capture.
    let a = Advert {
        version: Version::V2,
        vrid: 51,
        priority: 100,
        interval_cs: 100,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88))],
        auth: Auth::Pass(pass("1111")),
    };
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 133));
    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    assert_eq!(
        a.encode(src, dst),
        [
            0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0x55, 0x0f, 192, 0, 2, 88, b'1', b'1', b'1', b'1',
            0, 0, 0, 0
        ]
    );
    let zero = Advert { priority: 0, ..a };
    assert_eq!(
        &zero.encode(src, dst)[..8],
        &[0x21, 0x33, 0x00, 0x01, 0x01, 0x01, 0xb9, 0x0f]
    );
}

#[test]
fn v3_advert_bytes_use_the_pseudo_header() {
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 99,
        interval_cs: 10,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88))],
        auth: Auth::None,
    };
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 135));
    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    assert_eq!(
        a.encode(src, dst),
        [0x31, 0x33, 0x63, 0x01, 0x00, 0x0a, 0x06, 0x52, 192, 0, 2, 88]
    );
    // The same bytes from another source fail the checksum: it covers the pseudo-header.
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 136));
    let e = stackd_vrrp::validate::check(&a.encode(src, dst), other, dst, &expect(Version::V3));
    assert_eq!(e.map(|_| ()).map_err(|e| e.label()), Err("bad_checksum"));
}

#[test]
fn wrong_password_and_interval_are_rejected_by_reason() {
    let f = &vrrp_frames()[0];
    let mut e = expect(Version::V2);
    e.auth = Some(pass("2222"));
    assert_eq!(
        receive_v4(&f.bytes[14..], &e).map(|_| ()),
        Err(Reject::Auth)
    );
    let mut e = expect(Version::V2);
    e.adver_int = Duration::from_secs(2);
    assert_eq!(
        receive_v4(&f.bytes[14..], &e)
            .map(|_| ())
            .map_err(|r| r.label()),
        Err("interval_mismatch")
    );
    let mut e = expect(Version::V2);
    e.vrid = 52;
    assert_eq!(
        receive_v4(&f.bytes[14..], &e)
            .map(|_| ())
            .map_err(|r| r.label()),
        Err("other_vrid")
    );
}

#[test]
fn v3_ipv6_round_trip_and_checksum_covers_the_pseudo_header() {
    let src: IpAddr = "fe80::1".parse().unwrap();
    let dst: IpAddr = "ff02::12".parse().unwrap();
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        interval_cs: 10,
        addrs: vec![
            "2001:db8::88".parse().unwrap(),
            "2001:db8::89".parse().unwrap(),
        ],
        auth: Auth::None,
    };
    let b = a.encode(src, dst);
    assert_eq!(b.len(), 8 + 2 * 16);
    assert_eq!(
        Advert::decode(&b, src, dst),
        Ok(stackd_vrrp::packet::Decoded::Done(a))
    );
    let other: IpAddr = "fe80::2".parse().unwrap();
    assert_eq!(
        Advert::decode(&b, other, dst),
        Err(stackd_vrrp::packet::DecodeError::Checksum)
    );
}
