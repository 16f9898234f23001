//! The Internet checksum (RFC 1071) and the VRRPv3 pseudo-headers.
//!
//! VRRPv2 (RFC 3768 §5.3.8) sums the VRRP message alone; VRRPv3 (RFC 5798
//! §5.2.8) prepends the IPv4 or IPv6 pseudo-header, for IPv4 too. keepalived
//! does the same, so these bytes must match its packets exactly.

use std::net::IpAddr;

/// The VRRP protocol number, used in the pseudo-header (IANA).
pub const PROTO_VRRP: u8 = 112;

/// One's-complement sum folded to 16 bits, not yet inverted.
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// RFC 1071 checksum of `data`. Summing a message that carries its own
/// correct checksum gives 0.
pub fn internet(data: &[u8]) -> u16 {
    fold(sum(0, data))
}

/// RFC 5798 §5.2.8: checksum over the pseudo-header (src, dst, zero, protocol
/// 112, VRRP length) followed by the VRRP message.
pub fn with_pseudo_header(src: IpAddr, dst: IpAddr, vrrp: &[u8]) -> u16 {
    pseudo(src, dst, PROTO_VRRP, vrrp)
}

/// Pseudo-header checksum for any upper-layer protocol (ICMPv6 neighbor
/// advertisements use 58).
pub fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, vrrp: &[u8]) -> u16 {
    let mut acc = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum(acc, &s.octets());
            acc = sum(acc, &d.octets());
            acc += u32::from(proto);
            acc += vrrp.len() as u32;
        }
        (s, d) => {
            // RFC 8200 §8.1: 32-bit upper-layer length and next header.
            acc = sum(acc, &v6_octets(s));
            acc = sum(acc, &v6_octets(d));
            acc += vrrp.len() as u32;
            acc += u32::from(proto);
        }
    }
    fold(sum(acc, vrrp))
}

fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
        assert_eq!(
            internet(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet(&[0x01]), internet(&[0x01, 0x00]));
    }
}
