//! `[ha]` shape -> [`HaSpec`]: every check, each located, in one pass.

use std::collections::HashSet;
use std::num::NonZeroU8;
use std::time::Duration;

use super::spec::*;
use super::{EmailConfig, HaConfig, Instance, Track};
use crate::config::diag::{Findings, KeyPath};
use crate::config::{format_duration, secret, Secret};

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
        let (vrid, priority) = (self.vrid(ip, out), self.priority(ip, out));
        let version = self.version(ip, out);
        let advert_int = version.and_then(|v| {
            AdvertInterval::new(v, self.advert_int)
                .map_err(|e| out.push(ip.key("advert_int"), e))
                .ok()
        });
        let auth = self.auth(ip, version, out);
        self.check_vips(ip, out);
        self.check_unicast(ip, out);
        self.check_timing(ip, out);
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
                refresh: (!self.garp_master_refresh.is_zero()).then_some(self.garp_master_refresh),
            },
            tracks,
        })
    }

    fn vrid(&self, ip: &KeyPath, out: &mut Findings) -> Option<Vrid> {
        let vrid = u8::try_from(self.virtual_router_id)
            .ok()
            .and_then(Vrid::new);
        if vrid.is_none() {
            out.push(
                ip.key("virtual_router_id"),
                format!("{} is outside 1..=255", self.virtual_router_id),
            );
        }
        vrid
    }

    fn priority(&self, ip: &KeyPath, out: &mut Findings) -> Option<Priority> {
        let p = self.priority;
        let priority = u8::try_from(p).ok().and_then(Priority::new);
        match (p, priority) {
            (_, Some(_)) => {}
            (0, None) => out.push(ip.key("priority"), "priority 0 is reserved (a master leaving); use 1..=254, or 255 for the address owner"),
            (p, None) => out.push(
                ip.key("priority"),
                format!("{p} is outside 1..=254 (255 is only for the address owner)"),
            ),
        }
        priority
    }

    fn version(&self, ip: &KeyPath, out: &mut Findings) -> Option<Version> {
        match self.version {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            v => {
                out.push(
                    ip.key("version"),
                    format!("version {v} does not exist; use 2 or 3"),
                );
                None
            }
        }
    }

    /// Delays, GARP bursts and the webhook: what sizes work after a transition.
    fn check_timing(&self, ip: &KeyPath, out: &mut Findings) {
        bounded_delay(self.preempt_delay, &ip.key("preempt_delay"), out);
        bounded_delay(self.garp_master_delay, &ip.key("garp_master_delay"), out);
        bounded_delay(
            self.garp_master_refresh,
            &ip.key("garp_master_refresh"),
            out,
        );
        if !self.garp_master_refresh.is_zero() && self.garp_master_refresh < MIN_GARP_REFRESH {
            out.push(
                ip.key("garp_master_refresh"),
                format!(
                    "{} is below {}: neighbours ignore ARP updates within their 1s locktime; use 0s to turn it off",
                    format_duration(self.garp_master_refresh),
                    format_duration(MIN_GARP_REFRESH)
                ),
            );
        }
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
    /// The one condition this entry checks.
    fn check(&self, tp: &KeyPath, out: &mut Findings) -> Option<Check> {
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
            let found = if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            };
            out.push(
                tp.clone(),
                format!("set exactly one of http, process, script, interface (found {found})"),
            );
            return None;
        }
        let (key, check) = kinds.pop()?;
        match &check {
            Check::Http(u) if crate::http_client::parse_url(u).is_err() => out.push(
                tp.key("http"),
                "must be an http:// or https:// URL, e.g. \"http://127.0.0.1:9090/healthz\"",
            ),
            Check::Process(v) | Check::Script(v) | Check::Interface(v) if v.is_empty() => {
                out.push(tp.key(key), "must not be empty")
            }
            _ => return Some(check),
        }
        None
    }

    fn spec_at(&self, tp: &KeyPath, out: &mut Findings) -> Option<TrackSpec> {
        let before = out.errors.len();
        let check = self.check(tp, out);
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
        Some(TrackSpec {
            check: check?,
            interval: self.interval,
            timeout: self.timeout,
            fall: self.fall,
            rise: self.rise,
            on_down,
        })
    }
}
