//! The typed VRRP spec: what `stackd ha` runs, built once from `[ha]` at load.
//!
//! Validation and conversion are one pass (`HaConfig::spec_at`, in
//! `build.rs`): each check that passes yields a typed value ([`Vrid`],
//! [`Priority`], [`Version`], [`AdvertInterval`], [`Check`], ...), each that
//! fails yields a located finding. The runtime receives only an [`HaSpec`],
//! so it never casts, clamps or re-validates, and a value that sizes runtime
//! work (addresses per advert, GARP repeats, durations added to an
//! `Instant`) has a bound here, reported by `stackd check` with its position.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU8;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::EmailConfig;
use crate::config::format_duration;

/// Instances per daemon (VRIDs are 1..=255 per interface and version).
pub const MAX_INSTANCES: usize = 255;
/// Addresses in one advert: "Count IPvX Addrs" is one byte (RFC 5798 §5.2.5).
pub const MAX_VIPS: usize = 255;
/// IPv6 addresses that fit one advert in the minimum IPv6 MTU
/// (1280 - 40 header - 8 VRRP header, 16 bytes each).
pub const MAX_VIPS_V6: usize = 77;
/// Gratuitous ARPs per address per burst.
pub const MAX_GARP_REPEAT: u32 = 100;
/// Tracked checks per instance (each is a task probing every `interval`).
pub const MAX_TRACKS: usize = 32;
/// Unicast peers per instance (every advert goes to each).
pub const MAX_PEERS: usize = 32;
/// Mail recipients.
pub const MAX_RECIPIENTS: usize = 32;
/// Longest delay, interval or timeout in `[ha]`: far beyond any sane value,
/// far below what overflows `Instant` arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Shortest `garp_master_refresh`: past Linux's 1 s ARP `locktime`.
pub const MIN_GARP_REFRESH: Duration = Duration::from_millis(1100);
/// Largest `fall`/`rise`.
pub const MAX_FALL_RISE: u32 = 1000;

/// `[ha]`, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct HaSpec {
    pub admin: Option<SocketAddr>,
    pub email: Option<EmailConfig>,
    pub instances: Vec<InstanceSpec>,
}

/// One VRRP instance, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    pub interface: String,
    pub vrid: Vrid,
    pub priority: Priority,
    pub version: Version,
    pub advert_int: AdvertInterval,
    /// VRRPv2 PASS authentication; always `None` for v3.
    pub auth: Option<AuthPass>,
    /// 1..=[`MAX_VIPS`] addresses of one family (IPv6 needs v3).
    pub vips: Vec<IpNet>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// Empty: multicast. Same family as the VIPs.
    pub unicast_peers: Vec<IpAddr>,
    pub unicast_src_ip: Option<IpAddr>,
    pub notify: Option<PathBuf>,
    /// An `http://` or `https://` URL.
    pub notify_webhook: Option<String>,
    pub garp: Garp,
    pub tracks: Vec<TrackSpec>,
}

/// Virtual Router Identifier, 1..=255 (RFC 5798 §5.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vrid(NonZeroU8);

/// Configured priority, 1..=255; 255 is the address owner (RFC 5798 §5.2.4).
/// 0 is never configured: it means "the master is leaving".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority(NonZeroU8);

/// Wire version of the adverts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: whole-second intervals, optional simple password.
    V2,
    /// RFC 5798: centisecond intervals, pseudo-header checksum, IPv6.
    V3,
}

/// Advertisement interval, valid for its version: v2 whole seconds 1..=255,
/// v3 centiseconds 1..=4095 (RFC 5798 §5.2.7: 12 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertInterval {
    centis: u16,
}

/// The VRRPv2 simple password, zero-padded to the 8 bytes of the wire field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthPass([u8; 8]);

/// Gratuitous ARP bursts on becoming MASTER (keepalived's `garp_master_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Garp {
    /// Frames per address per burst, 1..=[`MAX_GARP_REPEAT`].
    pub repeat: u32,
    /// When to send the second burst; `None`: no second burst.
    pub delay: Option<Duration>,
    /// While MASTER, one more gratuitous ARP this often; `None`: never.
    pub refresh: Option<Duration>,
}

/// What one tracked condition checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// GET this `http://` or `https://` URL; 2xx is up.
    Http(String),
    /// A process with this name (as in /proc/PID/comm) runs.
    Process(String),
    /// This command (through `sh -c`) exits 0.
    Script(String),
    /// This interface is up with carrier.
    Interface(String),
}

/// What a down check does to the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDown {
    /// Weight 0: give up the VIP (keepalived FAULT).
    Fault,
    /// Weight N: lower the priority by N (1..=253).
    Lower(NonZeroU8),
}

/// One tracked condition, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackSpec {
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    pub fall: u32,
    pub rise: u32,
    pub on_down: OnDown,
}

// === impl Vrid, Priority, Version ===

impl Vrid {
    pub fn new(v: u8) -> Option<Vrid> {
        NonZeroU8::new(v).map(Vrid)
    }

    pub fn get(self) -> u8 {
        self.0.get()
    }
}

impl Priority {
    pub fn new(p: u8) -> Option<Priority> {
        NonZeroU8::new(p).map(Priority)
    }

    pub fn get(self) -> u8 {
        self.0.get()
    }
}

impl Version {
    /// 2 or 3, as written in the config and on the wire.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

// === impl AdvertInterval ===

impl AdvertInterval {
    /// `d` if it is a valid interval for `version`, else why not.
    pub fn new(version: Version, d: Duration) -> Result<AdvertInterval, String> {
        let ms = d.as_millis();
        match version {
            Version::V2 if ms == 0 || ms % 1000 != 0 || ms > 255_000 => Err(format!(
                "VRRPv2 advertises in whole seconds 1s..=255s, not {}; use version = 3 for sub-second intervals",
                format_duration(d)
            )),
            Version::V3 if ms < 10 || ms % 10 != 0 || ms > 40_950 => Err(format!(
                "VRRPv3 needs a multiple of 10ms within 10ms..=40950ms, not {}",
                format_duration(d)
            )),
            _ => Ok(AdvertInterval {
                centis: (ms / 10) as u16,
            }),
        }
    }

    /// Centiseconds: what the packet carries (v2 as seconds x 100).
    pub fn centis(self) -> u16 {
        self.centis
    }

    pub fn duration(self) -> Duration {
        Duration::from_millis(u64::from(self.centis) * 10)
    }
}

// === impl AuthPass ===

impl AuthPass {
    /// 1 to 8 ASCII characters.
    pub fn new(p: &str) -> Option<AuthPass> {
        if p.is_empty() || p.len() > 8 || !p.is_ascii() {
            return None;
        }
        let mut out = [0u8; 8];
        out[..p.len()].copy_from_slice(p.as_bytes());
        Some(AuthPass(out))
    }

    /// The wire bytes (RFC 3768 §5.3.10).
    pub fn bytes(self) -> [u8; 8] {
        self.0
    }
}

impl fmt::Debug for AuthPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthPass(***)")
    }
}

// === impl Check, OnDown ===

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Http(u) => write!(f, "http {u}"),
            Check::Process(p) => write!(f, "process {p}"),
            Check::Script(s) => write!(f, "script {s}"),
            Check::Interface(i) => write!(f, "interface {i}"),
        }
    }
}

impl OnDown {
    /// The configured weight: 0 for FAULT.
    pub fn weight(self) -> u8 {
        match self {
            OnDown::Fault => 0,
            OnDown::Lower(n) => n.get(),
        }
    }
}
