//! Receive-side checks of RFC 5798 §7.1 and RFC 3768 §7.1, pure.
//!
//! Every way a packet can be refused is a [`Reject`] with a stable metric
//! label, so `/metrics` can count "bad TTL" apart from "wrong password" —
//! the two mean very different things to an operator (a router off-link vs a
//! misconfigured peer).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::ip::parse_ipv4;
pub use crate::ip::IpError;
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
    /// Unicast mode: the only senders we listen to. Empty: multicast, anyone on-link.
    pub peers: Vec<IpAddr>,
}

/// Declares the reasons once: the enum, its labels and the list of all
/// labels come from the same lines, so a new reason cannot miss `/metrics`.
macro_rules! reasons {
    ($($(#[$doc:meta])* $kind:ident => $label:literal,)*) => {
        /// Why a packet was discarded, as a metric label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Reason { $($(#[$doc])* $kind,)* }

        impl Reason {
            /// Stable label for `stackd_vrrp_rejected_packets_total{reason=...}`.
            pub fn label(self) -> &'static str {
                match self { $(Reason::$kind => $label,)* }
            }
        }

        impl Reject {
            /// Every label, so metrics can show zeros before the first reject.
            pub const LABELS: &'static [&'static str] = &[$($label,)*];
        }
    };
}

reasons! {
    Truncated => "truncated",
    BadIpHeader => "bad_ip_header",
    BadProtocol => "bad_protocol",
    BadTtl => "bad_ttl",
    BadVersion => "bad_version",
    BadType => "bad_type",
    BadChecksum => "bad_checksum",
    BadAuthType => "bad_auth_type",
    NoAddresses => "no_addresses",
    VersionMismatch => "version_mismatch",
    OtherVrid => "other_vrid",
    AuthMismatch => "auth_mismatch",
    /// v2: not the configured interval (RFC 3768 §7.1).
    IntervalMismatch => "interval_mismatch",
    /// v3: Max Advert Interval 0 (RFC 5798 §5.2.7 allows 1..=4095 centiseconds).
    BadInterval => "bad_interval",
    AddressMismatch => "address_mismatch",
    /// Unicast mode: the sender is not in `unicast_peers`.
    NotAPeer => "not_a_peer",
    OwnPacket => "own_packet",
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
    #[error("advert interval of {0} centiseconds is outside 1..=4095 (RFC 5798 §5.2.7)")]
    BadInterval(u16),
    #[error("virtual addresses {got:?} differ from ours")]
    Addresses { got: Vec<IpAddr> },
    #[error("{0} is not one of our unicast peers")]
    NotAPeer(IpAddr),
    #[error("our own packet")]
    Own,
}

// === impl Reject ===

impl Reject {
    pub fn reason(&self) -> Reason {
        match self {
            Reject::Truncated { .. } => Reason::Truncated,
            Reject::Ip(_) => Reason::BadIpHeader,
            Reject::Protocol(_) => Reason::BadProtocol,
            Reject::Ttl(_) => Reason::BadTtl,
            Reject::Decode(DecodeError::Version(_)) => Reason::BadVersion,
            Reject::Decode(DecodeError::Type(_)) => Reason::BadType,
            Reject::Decode(DecodeError::Checksum) => Reason::BadChecksum,
            Reject::Decode(DecodeError::AuthType(_)) => Reason::BadAuthType,
            Reject::Decode(DecodeError::NoAddresses) => Reason::NoAddresses,
            Reject::VersionMismatch { .. } => Reason::VersionMismatch,
            Reject::OtherVrid(_) => Reason::OtherVrid,
            Reject::Auth => Reason::AuthMismatch,
            Reject::Interval { .. } => Reason::IntervalMismatch,
            Reject::BadInterval(_) => Reason::BadInterval,
            Reject::Addresses { .. } => Reason::AddressMismatch,
            Reject::NotAPeer(_) => Reason::NotAPeer,
            Reject::Own => Reason::OwnPacket,
        }
    }

    /// Stable label for `stackd_vrrp_rejected_packets_total{reason=...}`.
    pub fn label(&self) -> &'static str {
        self.reason().label()
    }
}

/// Unicast mode accepts only configured peers: anyone else on the segment
/// who can forge an advert would otherwise win the election.
fn from_peer(src: IpAddr, expect: &Expect) -> Result<(), Reject> {
    if expect.peers.is_empty() || expect.peers.contains(&src) {
        Ok(())
    } else {
        Err(Reject::NotAPeer(src))
    }
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
    from_peer(IpAddr::V4(ip.src), expect)?;
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
    from_peer(IpAddr::V6(src), expect)?;
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
    // RFC 5798 §5.2.7: a 12-bit interval in centiseconds; 0 would make
    // Master_Down_Interval 0 and let one forged packet flip the election.
    if a.version == Version::V3 && a.interval_cs == 0 {
        return Err(Reject::BadInterval(a.interval_cs));
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
