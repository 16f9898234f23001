#![no_main]
//! Any bytes on the wire: decode and validate must return, never panic.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use stackd_vrrp::packet::{pass, Advert, Version};
use stackd_vrrp::validate::{receive_v4, Expect};

fuzz_target!(|data: &[u8]| {
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 133));
    for version in [Version::V2, Version::V3] {
        let expect = Expect {
            version,
            vrid: 51,
            auth: (version == Version::V2).then(|| pass("1111")),
            adver_int: Duration::from_secs(1),
            vips: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 88))],
            own: vec![],
            peers: vec![],
        };
        let _ = receive_v4(data, &expect);
    }
    let _ = Advert::decode(data, v4, v4);
    let v6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let _ = Advert::decode(data, v6, v6);
});
