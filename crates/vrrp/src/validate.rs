//! Receive-side checks of RFC 5798 §7.1 and RFC 3768 §7.1, pure.
//!
//! Every way a packet can be refused is a [`Reject`] with a stable metric
//! label, so `/metrics` can count "bad TTL" apart from "wrong password" —
//! the two mean very different things to an operator (a router off-link vs a
//! misconfigured peer).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::ip::{parse_ipv4, IpError};
use crate::packet::{Advert, Auth, DecodeError, Decoded, Version};
use crate::timers;

/// What this instance expects of a peer's advertisements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub version: Version,
    pub vrid: u8,
    /// VRRPv2 PASS password (zero-padded); `None` for auth type 0.
    pub auth: Option<[u8; 8]>,
    pub adver_int: Duration,
    pub vips: Vec<IpAddr>,
    /// Our own addresses: our packets looped back are dropped quietly.
    pub own: Vec<IpAddr>,
}

/// Why a received packet was discarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("truncated: {have} bytes, need {needed}")]
    Truncated { have: usize, needed: usize },
    #[error("not an IPv4 packet: {0}")]
    Ip(#[from] IpError),
    #[error("IP protocol {0} is not VRRP (112)")]
    Protocol(u8),
    #[error("TTL {0} is not 255: sender is not on-link (RFC 5798 §7.1)")]
    Ttl(u8),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("version {got:?}, configured {want:?}")]
    VersionMismatch { got: Version, want: Version },
    #[error("VRID {0} is not ours")]
    OtherVrid(u8),
    #[error("authentication mismatch")]
    Auth,
    #[error("advert interval {got:?} differs from the configured {want:?} (RFC 3768 §7.1)")]
    Interval { got: Duration, want: Duration },
    #[error("virtual addresses {got:?} differ from ours")]
    Addresses { got: Vec<IpAddr> },
    #[error("our own packet")]
    Own,
}

// === impl Reject ===

impl Reject {
    /// Stable label for `vrrp_rejected_packets_total{reason=...}`.
    pub fn label(&self) -> &'static str {
        match self {
            Reject::Truncated { .. } => "truncated",
            Reject::Ip(_) => "bad_ip_header",
            Reject::Protocol(_) => "bad_protocol",
            Reject::Ttl(_) => "bad_ttl",
            Reject::Decode(DecodeError::Version(_)) => "bad_version",
            Reject::Decode(DecodeError::Type(_)) => "bad_type",
            Reject::Decode(DecodeError::Checksum) => "bad_checksum",
            Reject::Decode(DecodeError::AuthType(_)) => "bad_auth_type",
            Reject::Decode(DecodeError::NoAddresses) => "no_addresses",
            Reject::VersionMismatch { .. } => "version_mismatch",
            Reject::OtherVrid(_) => "other_vrid",
            Reject::Auth => "auth_mismatch",
            Reject::Interval { .. } => "interval_mismatch",
            Reject::Addresses { .. } => "address_mismatch",
            Reject::Own => "own_packet",
        }
    }

    /// Every label, so metrics can show zeros before the first reject.
    pub const LABELS: [&'static str; 15] = [
        "truncated",
        "bad_ip_header",
        "bad_protocol",
        "bad_ttl",
        "bad_version",
        "bad_type",
        "bad_checksum",
        "bad_auth_type",
        "no_addresses",
        "version_mismatch",
        "other_vrid",
        "auth_mismatch",
        "interval_mismatch",
        "address_mismatch",
        "own_packet",
    ];
}

/// Validates one datagram from a raw IPv4 socket (IP header included).
pub fn receive_v4(buf: &[u8], expect: &Expect) -> Result<(Ipv4Addr, Advert), Reject> {
    let ip = match parse_ipv4(buf)? {
        Decoded::Done(ip) => ip,
        Decoded::Incomplete { needed } => {
            return Err(Reject::Truncated {
                have: buf.len(),
                needed,
            })
        }
    };
    if ip.protocol != crate::checksum::PROTO_VRRP {
        return Err(Reject::Protocol(ip.protocol));
    }
    if expect.own.contains(&IpAddr::V4(ip.src)) {
        return Err(Reject::Own);
    }
    // RFC 5798 §7.1: "MUST verify that the IPv4 TTL is 255".
    if ip.ttl != 255 {
        return Err(Reject::Ttl(ip.ttl));
    }
    let advert = check(ip.payload, IpAddr::V4(ip.src), IpAddr::V4(ip.dst), expect)?;
    Ok((ip.src, advert))
}

/// Validates one VRRP message from an IPv6 raw socket, whose header fields
/// came as ancillary data.
pub fn receive_v6(
    vrrp: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    expect: &Expect,
) -> Result<Advert, Reject> {
    if expect.own.contains(&IpAddr::V6(src)) {
        return Err(Reject::Own);
    }
    // RFC 5798 §7.1: "MUST verify that the IPv6 Hop Limit is 255".
    if hop_limit != 255 {
        return Err(Reject::Ttl(hop_limit));
    }
    check(vrrp, IpAddr::V6(src), IpAddr::V6(dst), expect)
}

/// The VRRP-level checks, shared by IPv4 and IPv6 receive paths.
pub fn check(vrrp: &[u8], src: IpAddr, dst: IpAddr, expect: &Expect) -> Result<Advert, Reject> {
    // RFC 5798 §7.1: complete packet, version, checksum (inside decode).
    let a = match Advert::decode(vrrp, src, dst)? {
        Decoded::Done(a) => a,
        Decoded::Incomplete { needed } => {
            return Err(Reject::Truncated {
                have: vrrp.len(),
                needed,
            })
        }
    };
    if a.version != expect.version {
        return Err(Reject::VersionMismatch {
            got: a.version,
            want: expect.version,
        });
    }
    // "MUST verify that the VRID is configured on the receiving interface".
    if a.vrid != expect.vrid {
        return Err(Reject::OtherVrid(a.vrid));
    }
    if a.version == Version::V2 {
        // RFC 3768 §7.1: auth type and data must match the local configuration.
        let ok = match (&a.auth, &expect.auth) {
            (Auth::None, None) => true,
            (Auth::Pass(got), Some(want)) => got == want,
            _ => false,
        };
        if !ok {
            return Err(Reject::Auth);
        }
        // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is
        // the same as the locally configured for this virtual router".
        let got = timers::centis(a.interval_cs);
        if got != expect.adver_int {
            return Err(Reject::Interval {
                got,
                want: expect.adver_int,
            });
        }
    }
    // RFC 5798 §7.1: "MAY verify that 'Count IPvX Addrs' and the list of IPvX
    // address(es) match". keepalived drops on mismatch; so do we, as interop
    // with it is the point.
    let mut got = a.addrs.clone();
    let mut want = expect.vips.clone();
    got.sort();
    want.sort();
    if got != want {
        return Err(Reject::Addresses { got: a.addrs });
    }
    Ok(a)
}
