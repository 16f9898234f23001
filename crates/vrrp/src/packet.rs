//! VRRP advertisements: pure encode and decode over byte slices.
//!
//! One [`Advert`] type covers both wire versions because the state machine
//! does not care which one carried it; only the codec and the validation in
//! [`crate::validate`] do. Decoding never panics: a short buffer is
//! [`Decoded::Incomplete`] (its own result, like a stream codec's "need more
//! bytes"), anything malformed is a [`DecodeError`] that names what was wrong.
//!
//! VRRPv2, RFC 3768 §5.1 (keepalived sends auth type 0 or 1/PASS):
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1..n)                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! VRRPv3, RFC 5798 §5.1 (interval in centiseconds, no auth, checksum over
//! the pseudo-header, IPv4 or IPv6 addresses):
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Ver=3 | Type=1| Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPvX Address(es)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;

/// Wire version of an advertisement: the config's own type, so the version
/// configured and the version on the wire cannot disagree in kind.
pub use stackd_common::config::ha::Version;

/// VRRPv2 authentication (RFC 3768 §5.3.6). Type 2 (AH) was removed by the
/// RFC and is rejected as unsupported, as keepalived does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Type 1: up to 8 bytes, zero-padded on the wire.
    Pass([u8; 8]),
}

/// One advertisement, independent of the wire version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    /// 0 means "the master is leaving" (RFC 5798 §6.4.3), 255 the address owner.
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds).
    pub interval_cs: u16,
    pub addrs: Vec<IpAddr>,
    /// Always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// Result of decoding a buffer that may be too short.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<T> {
    Done(T),
    /// The buffer ends before the message does; `needed` is the total length.
    Incomplete {
        needed: usize,
    },
}

/// Why bytes are not a VRRP advertisement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("version {0} is neither 2 nor 3")]
    Version(u8),
    #[error("type {0} is not 1 (advertisement)")]
    Type(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("auth type {0} is not supported")]
    AuthType(u8),
    #[error("no addresses in the advertisement")]
    NoAddresses,
}

/// Auth data helper: the configured password, zero-padded to 8 bytes.
pub fn pass(p: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(p.bytes()) {
        *o = b;
    }
    out
}

// === impl Advert ===

impl Advert {
    /// Bytes of the VRRP message; `src`/`dst` feed the v3 pseudo-header.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + 16 * self.addrs.len() + 8);
        let (ver, second) = match self.version {
            // RFC 3768 §5.3.7: Adver Int in seconds; §5.3.6 auth type.
            Version::V2 => {
                let at = if matches!(self.auth, Auth::Pass(_)) {
                    1
                } else {
                    0
                };
                (2u8, [at, (self.interval_cs / 100).min(255) as u8])
            }
            // RFC 5798 §5.2.7: 4 reserved bits then 12 bits of centiseconds.
            Version::V3 => (3u8, (self.interval_cs & 0x0fff).to_be_bytes()),
        };
        b.extend_from_slice(&[
            (ver << 4) | 1,
            self.vrid,
            self.priority,
            self.addrs.len() as u8,
        ]);
        b.extend_from_slice(&[second[0], second[1], 0, 0]);
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::Pass(p) => b.extend_from_slice(p),
                Auth::None => b.extend_from_slice(&[0; 8]),
            }
        }
        let sum = match self.version {
            Version::V2 => checksum::internet(&b),
            Version::V3 => checksum::with_pseudo_header(src, dst, &b),
        };
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Parses a VRRP message received from `src` to `dst` (the IP header's
    /// addresses; the address family of `src` decides IPv4 or IPv6 entries).
    pub fn decode(buf: &[u8], src: IpAddr, dst: IpAddr) -> Result<Decoded<Advert>, DecodeError> {
        if buf.len() < 8 {
            return Ok(Decoded::Incomplete { needed: 8 });
        }
        let version = match buf[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(DecodeError::Version(v)),
        };
        if buf[0] & 0x0f != 1 {
            return Err(DecodeError::Type(buf[0] & 0x0f));
        }
        let count = usize::from(buf[3]);
        if count == 0 {
            return Err(DecodeError::NoAddresses);
        }
        let alen = if src.is_ipv4() { 4 } else { 16 };
        let auth_len = if version == Version::V2 { 8 } else { 0 };
        let needed = 8 + alen * count + auth_len;
        let Some(msg) = buf.get(..needed) else {
            return Ok(Decoded::Incomplete { needed });
        };
        let ok = match version {
            Version::V2 => checksum::internet(msg) == 0,
            Version::V3 => checksum::with_pseudo_header(src, dst, msg) == 0,
        };
        if !ok {
            return Err(DecodeError::Checksum);
        }
        let addrs = msg[8..8 + alen * count]
            .chunks_exact(alen)
            .map(|c| match <[u8; 4]>::try_from(c) {
                Ok(a) => IpAddr::V4(Ipv4Addr::from(a)),
                Err(_) => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(o))
                }
            })
            .collect();
        let (interval_cs, auth) = match version {
            Version::V2 => {
                let auth = match msg[4] {
                    0 => Auth::None,
                    1 => {
                        let mut p = [0u8; 8];
                        p.copy_from_slice(&msg[needed - 8..needed]);
                        Auth::Pass(p)
                    }
                    t => return Err(DecodeError::AuthType(t)),
                };
                (u16::from(msg[5]) * 100, auth)
            }
            Version::V3 => (u16::from_be_bytes([msg[4] & 0x0f, msg[5]]), Auth::None),
        };
        Ok(Decoded::Done(Advert {
            version,
            vrid: msg[1],
            priority: msg[2],
            interval_cs,
            addrs,
            auth,
        }))
    }
}
