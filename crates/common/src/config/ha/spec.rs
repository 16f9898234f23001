//! The typed VRRP spec: what `stackd ha` runs, built once from `[ha]` at load.
//!
//! Validation and conversion are one pass ([`HaConfig::spec_at`]): each check
//! that passes yields a typed value ([`Vrid`], [`Priority`], [`Version`],
//! [`AdvertInterval`], [`Check`], ...), each that fails yields a located
//! finding. The runtime receives only an [`HaSpec`], so it never casts,
//! clamps or re-validates, and a value that sizes runtime work (addresses
//! per advert, GARP repeats, durations added to an `Instant`) has a bound
//! here, reported by `stackd check` with its position.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU8;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::{EmailConfig, HaConfig, Instance, Track};
use crate::config::diag::{Findings, KeyPath};
use crate::config::{format_duration, secret, Secret};

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

// === impl HaConfig ===

impl HaConfig {
    /// Checks `[ha]` (at `at`) and builds its spec; `None` when anything is wrong.
    pub fn spec_at(&self, at: &KeyPath, out: &mut Findings) -> Option<HaSpec> {
        let before = out.errors.len();
        if self.instance.is_empty() {
            out.push(at.key("instance"), "at least one [[ha.instance]] is needed");
        }
        if self.instance.len() > MAX_INSTANCES {
            out.push(
                at.key("instance"),
                format!("{} instances; at most {MAX_INSTANCES}", self.instance.len()),
            );
        }
        let mut names = HashSet::new();
        let mut vrids = HashSet::new(); // (interface, vrid, version): RFC 5798 §5.2.3 scope
        let mut instances = Vec::new();
        for (i, inst) in self.instance.iter().enumerate() {
            let ip = at.key("instance").index(i);
            if !inst.name.is_empty() && !names.insert(inst.name.as_str()) {
                out.push(
                    ip.key("name"),
                    format!("duplicate instance name \"{}\"", inst.name),
                );
            }
            if !vrids.insert((
                inst.interface.as_str(),
                inst.virtual_router_id,
                inst.version,
            )) {
                out.push(
                    ip.key("virtual_router_id"),
                    format!(
                        "another instance already uses VRID {} on {}",
                        inst.virtual_router_id, inst.interface
                    ),
                );
            }
            instances.extend(inst.spec_at(&ip, out));
        }
        if let Some(e) = &self.email {
            e.check(&at.key("email"), out);
        }
        (out.errors.len() == before).then(|| HaSpec {
            admin: self.admin,
            email: self.email.clone(),
            instances,
        })
    }
}

impl EmailConfig {
    fn check(&self, ep: &KeyPath, out: &mut Findings) {
        if !self.smtp_server.contains(':') {
            out.push(
                ep.key("smtp_server"),
                "write host:port, e.g. \"127.0.0.1:25\"",
            );
        }
        if self.to.is_empty() {
            out.push(ep.key("to"), "at least one recipient is needed");
        }
        if self.to.len() > MAX_RECIPIENTS {
            out.push(ep.key("to"), format!("at most {MAX_RECIPIENTS} recipients"));
        }
        bounded(self.timeout, &ep.key("timeout"), out);
    }
}

/// Pushes an error unless `0 < d <= MAX_DURATION`.
fn bounded(d: Duration, at: &KeyPath, out: &mut Findings) {
    if d.is_zero() {
        out.push(at.clone(), "must be greater than 0s");
    } else if d > MAX_DURATION {
        out.push(
            at.clone(),
            format!(
                "{} is too long; at most {}",
                format_duration(d),
                format_duration(MAX_DURATION)
            ),
        );
    }
}

/// Like [`bounded`], but 0 is allowed (a delay of none).
fn bounded_delay(d: Duration, at: &KeyPath, out: &mut Findings) {
    if !d.is_zero() {
        bounded(d, at, out);
    }
}

// === impl Instance ===

impl Instance {
    /// Checks one instance and builds its spec.
    fn spec_at(&self, ip: &KeyPath, out: &mut Findings) -> Option<InstanceSpec> {
        let before = out.errors.len();
        if self.name.is_empty() {
            out.push(ip.key("name"), "must not be empty");
        }
        if self.interface.is_empty() || self.interface.len() > 15 {
            out.push(
                ip.key("interface"),
                "an interface name has 1 to 15 characters",
            );
        }
        let vrid = u8::try_from(self.virtual_router_id)
            .ok()
            .and_then(Vrid::new);
        if vrid.is_none() {
            out.push(
                ip.key("virtual_router_id"),
                format!("{} is outside 1..=255", self.virtual_router_id),
            );
        }
        let priority = match self.priority {
            0 => {
                out.push(ip.key("priority"), "priority 0 is reserved (a master leaving); use 1..=254, or 255 for the address owner");
                None
            }
            p => u8::try_from(p).ok().and_then(Priority::new).or_else(|| {
                out.push(
                    ip.key("priority"),
                    format!("{p} is outside 1..=254 (255 is only for the address owner)"),
                );
                None
            }),
        };
        let version = match self.version {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            v => {
                out.push(
                    ip.key("version"),
                    format!("version {v} does not exist; use 2 or 3"),
                );
                None
            }
        };
        let advert_int = version.and_then(|v| {
            AdvertInterval::new(v, self.advert_int)
                .map_err(|e| out.push(ip.key("advert_int"), e))
                .ok()
        });
        let auth = self.auth(ip, version, out);
        self.check_vips(ip, out);
        self.check_unicast(ip, out);
        bounded_delay(self.preempt_delay, &ip.key("preempt_delay"), out);
        bounded_delay(self.garp_master_delay, &ip.key("garp_master_delay"), out);
        if !(1..=MAX_GARP_REPEAT).contains(&self.garp_master_repeat) {
            out.push(
                ip.key("garp_master_repeat"),
                format!(
                    "{} is outside 1..={MAX_GARP_REPEAT}",
                    self.garp_master_repeat
                ),
            );
        }
        if let Some(u) = &self.notify_webhook {
            if crate::http_client::parse_url(u).is_err() {
                out.push(
                    ip.key("notify_webhook"),
                    "must be an http:// or https:// URL with a host",
                );
            }
        }
        if self.track.len() > MAX_TRACKS {
            out.push(
                ip.key("track"),
                format!("at most {MAX_TRACKS} checks per instance"),
            );
        }
        let tracks: Vec<TrackSpec> = self
            .track
            .iter()
            .enumerate()
            .filter_map(|(j, t)| t.spec_at(&ip.key("track").index(j), out))
            .collect();
        if out.errors.len() != before {
            return None;
        }
        Some(InstanceSpec {
            name: self.name.clone(),
            interface: self.interface.clone(),
            vrid: vrid?,
            priority: priority?,
            version: version?,
            advert_int: advert_int?,
            auth: auth?,
            vips: self.virtual_ipaddress.clone(),
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            unicast_peers: self.unicast_peers.clone(),
            unicast_src_ip: self.unicast_src_ip,
            notify: self.notify.clone(),
            notify_webhook: self.notify_webhook.clone(),
            garp: Garp {
                repeat: self.garp_master_repeat,
                delay: (!self.garp_master_delay.is_zero()).then_some(self.garp_master_delay),
            },
            tracks,
        })
    }

    /// The password from `auth_pass` or `auth_pass_file`: `Some(None)` for
    /// no authentication, `None` when something is wrong.
    fn auth(
        &self,
        ip: &KeyPath,
        version: Option<Version>,
        out: &mut Findings,
    ) -> Option<Option<AuthPass>> {
        let (text, key) = match (&self.auth_pass, &self.auth_pass_file) {
            (None, None) => return Some(None),
            (Some(_), Some(_)) => {
                out.push(
                    ip.key("auth_pass_file"),
                    "set auth_pass or auth_pass_file, not both",
                );
                return None;
            }
            (Some(p), None) => (p.clone(), "auth_pass"),
            // Another service validating this table: the file is not its to
            // read (the spec it builds is never used).
            (None, Some(_)) if out.skip_secret_files => (Secret::new("unread"), "auth_pass_file"),
            (None, Some(path)) => {
                if let Some(mode) = secret::world_readable(path) {
                    out.warn(
                        ip.key("auth_pass_file"),
                        secret::world_readable_warning(path, mode),
                    );
                }
                match secret::read_secret_file(path) {
                    Ok(s) => (s, "auth_pass_file"),
                    Err(e) => {
                        out.push(ip.key("auth_pass_file"), e);
                        return None;
                    }
                }
            }
        };
        if version == Some(Version::V3) {
            out.push(
                ip.key(key),
                "VRRPv3 has no authentication (RFC 5798 removed it); remove it or use version = 2",
            );
            return None;
        }
        match AuthPass::new(text.expose()) {
            Some(p) => Some(Some(p)),
            None => {
                out.push(ip.key(key), "a VRRPv2 password is 1 to 8 ASCII characters");
                None
            }
        }
    }

    fn check_vips(&self, ip: &KeyPath, out: &mut Findings) {
        let at = ip.key("virtual_ipaddress");
        let vips = &self.virtual_ipaddress;
        if vips.is_empty() {
            out.push(
                at.clone(),
                "at least one virtual address is needed, e.g. [\"192.0.2.88/24\"]",
            );
        }
        let mut seen = HashSet::new();
        for (j, v) in vips.iter().enumerate() {
            if !seen.insert(v.addr()) {
                out.push(at.index(j), format!("{} is listed twice", v.addr()));
            }
            if v.addr().is_unspecified() || v.addr().is_multicast() || v.addr().is_loopback() {
                out.push(
                    at.index(j),
                    format!("{} cannot be a virtual address", v.addr()),
                );
            }
        }
        let families: HashSet<bool> = vips.iter().map(|v| v.addr().is_ipv4()).collect();
        if families.len() > 1 {
            out.push(at.clone(), "one instance carries either IPv4 or IPv6 addresses (RFC 5798 §7.1); split them into two instances");
        }
        let v6 = families.len() == 1 && families.contains(&false);
        if v6 && self.version == 2 {
            out.push(
                at.clone(),
                "IPv6 virtual addresses need version = 3 (VRRPv2 is IPv4 only)",
            );
        }
        let max = if v6 { MAX_VIPS_V6 } else { MAX_VIPS };
        if vips.len() > max {
            out.push(
                at,
                format!(
                    "{} addresses do not fit one advertisement; at most {max}{}: split them into several instances",
                    vips.len(),
                    if v6 { " IPv6 addresses (the minimum IPv6 MTU)" } else { " (the address count is one byte)" }
                ),
            );
        }
    }

    /// Adverts go from one family to the same family (RFC 5798 §5.1.1 / §5.1.2).
    fn check_unicast(&self, ip: &KeyPath, out: &mut Findings) {
        if self.unicast_peers.len() > MAX_PEERS {
            out.push(
                ip.key("unicast_peers"),
                format!("at most {MAX_PEERS} peers"),
            );
        }
        let Some(first) = self.virtual_ipaddress.first() else {
            return;
        };
        let v4 = first.addr().is_ipv4();
        let family = if v4 { "IPv4" } else { "IPv6" };
        if let Some(src) = self.unicast_src_ip {
            if src.is_ipv4() != v4 {
                out.push(
                    ip.key("unicast_src_ip"),
                    format!("{src} is not {family} like the virtual addresses"),
                );
            }
        }
        for (j, p) in self.unicast_peers.iter().enumerate() {
            if p.is_ipv4() != v4 {
                out.push(
                    ip.key("unicast_peers").index(j),
                    format!("{p} is not {family} like the virtual addresses"),
                );
            }
        }
    }
}

// === impl Track ===

impl Track {
    fn spec_at(&self, tp: &KeyPath, out: &mut Findings) -> Option<TrackSpec> {
        let before = out.errors.len();
        let mut kinds = Vec::new();
        if let Some(u) = &self.http {
            kinds.push(("http", Check::Http(u.clone())));
        }
        if let Some(p) = &self.process {
            kinds.push(("process", Check::Process(p.clone())));
        }
        if let Some(s) = &self.script {
            kinds.push(("script", Check::Script(s.clone())));
        }
        if let Some(i) = &self.interface {
            kinds.push(("interface", Check::Interface(i.clone())));
        }
        if kinds.len() != 1 {
            let found: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
            out.push(
                tp.clone(),
                format!(
                    "set exactly one of http, process, script, interface (found {})",
                    if found.is_empty() {
                        "none".to_owned()
                    } else {
                        found.join(", ")
                    }
                ),
            );
        }
        match kinds.first() {
            Some((_, Check::Http(u))) if crate::http_client::parse_url(u).is_err() => out.push(
                tp.key("http"),
                "must be an http:// or https:// URL, e.g. \"http://127.0.0.1:9090/healthz\"",
            ),
            Some((k, Check::Process(v) | Check::Script(v) | Check::Interface(v)))
                if v.is_empty() =>
            {
                out.push(tp.key(k), "must not be empty")
            }
            _ => {}
        }
        if self.interval < Duration::from_millis(10) {
            out.push(tp.key("interval"), "must be at least 10ms");
        } else {
            bounded(self.interval, &tp.key("interval"), out);
        }
        bounded(self.timeout, &tp.key("timeout"), out);
        for (key, n) in [("fall", self.fall), ("rise", self.rise)] {
            if n == 0 {
                out.push(tp.key(key), "must be at least 1");
            } else if n > MAX_FALL_RISE {
                out.push(tp.key(key), format!("{n} is outside 1..={MAX_FALL_RISE}"));
            }
        }
        let on_down = match u8::try_from(self.weight).ok().filter(|w| *w <= 253) {
            Some(w) => NonZeroU8::new(w).map_or(OnDown::Fault, OnDown::Lower),
            None => {
                out.push(
                    tp.key("weight"),
                    format!("{} is outside 0..=253", self.weight),
                );
                OnDown::Fault
            }
        };
        if out.errors.len() != before {
            return None;
        }
        let (_, check) = kinds.pop()?;
        Some(TrackSpec {
            check,
            interval: self.interval,
            timeout: self.timeout,
            fall: self.fall,
            rise: self.rise,
            on_down,
        })
    }
}
