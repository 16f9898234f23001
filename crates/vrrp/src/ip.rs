//! The IPv4 header in front of a received VRRP message.
//!
//! A raw IPv4 socket hands us the IP header too; we need its TTL (RFC 5798
//! §7.1: must be 255, proving the sender is on-link), its protocol and its
//! addresses (the v3 pseudo-header and the master's primary address).
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use crate::packet::Decoded;

/// The parts of an IPv4 header VRRP validation needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4View<'a> {
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Bytes after the header, cut at Total Length.
    pub payload: &'a [u8],
}

/// Why bytes are not an IPv4 packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    #[error("not IPv4 (version {0})")]
    Version(u8),
    #[error("header length {0} is below 20 bytes")]
    HeaderLength(usize),
}

/// Splits a raw-socket datagram into header fields and payload.
pub fn parse_ipv4(buf: &[u8]) -> Result<Decoded<Ipv4View<'_>>, IpError> {
    if buf.len() < 20 {
        return Ok(Decoded::Incomplete { needed: 20 });
    }
    if buf[0] >> 4 != 4 {
        return Err(IpError::Version(buf[0] >> 4));
    }
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(IpError::HeaderLength(ihl));
    }
    let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    // Linux raw sockets report the real length; trust the smaller of the two.
    let end = if total >= ihl {
        total.min(buf.len())
    } else {
        buf.len()
    };
    let Some(payload) = buf.get(ihl..end) else {
        return Ok(Decoded::Incomplete { needed: ihl });
    };
    Ok(Decoded::Done(Ipv4View {
        ttl: buf[8],
        protocol: buf[9],
        src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
        dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
        payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_header_needs_more() {
        assert_eq!(
            parse_ipv4(&[0x45; 10]),
            Ok(Decoded::Incomplete { needed: 20 })
        );
    }

    #[test]
    fn rejects_v6_and_bad_ihl() {
        let mut b = [0u8; 20];
        b[0] = 0x60;
        assert_eq!(parse_ipv4(&b), Err(IpError::Version(6)));
        b[0] = 0x44;
        assert_eq!(parse_ipv4(&b), Err(IpError::HeaderLength(16)));
    }

    #[test]
    fn ihl_beyond_buffer_needs_more() {
        let mut b = [0u8; 20];
        b[0] = 0x4f;
        assert_eq!(parse_ipv4(&b), Ok(Decoded::Incomplete { needed: 60 }));
    }
}
