//! What several VRRP test files build the same way: a VRRPv3 advert from a
//! TEST-NET-1 sender, wrapped in the IPv4 header a raw socket hands us.

use std::net::{IpAddr, Ipv4Addr};

use stackd_vrrp::packet::{Advert, Auth, Version};

/// The VRRP multicast group (RFC 5798 §5.1.1.2).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// An IPv4 datagram from `src` to the VRRP group carrying a v3 advert for
/// VRID 51 with `priority`, a 100 ms interval and `vip`; the IP TTL is
/// `ttl` (255 is the only valid one, RFC 5798 §5.1.1.3).
pub fn v3_datagram(src: Ipv4Addr, vip: Ipv4Addr, priority: u8, ttl: u8) -> Vec<u8> {
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs: 10,
        addrs: vec![IpAddr::V4(vip)],
        auth: Auth::None,
    };
    let body = a.encode(IpAddr::V4(src), IpAddr::V4(GROUP));
    // Version 4, IHL 5; DSCP CS6; total length; id 1; no fragment; TTL;
    // protocol 112 (VRRP); checksum left 0 (the kernel checks it, not us).
    let len = u8::try_from(20 + body.len()).expect("an advert fits one byte of length");
    let mut ip = vec![0x45, 0xc0, 0, len, 0, 1, 0, 0, ttl, 112, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&GROUP.octets());
    ip.extend_from_slice(&body);
    ip
}
