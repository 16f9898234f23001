//! `[ha]`: the keepalived part. One `[[ha.instance]]` per `vrrp_instance`.
//! Defaults follow keepalived (`advert_int 1`, `preempt`, `garp_master_repeat 5`,
//! `garp_master_delay 5`), except that durations carry units.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::diag::{Findings, KeyPath};
use super::units::duration;

/// The `[ha]` table.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// Admin listener: `/healthz`, `/status` (JSON), `/metrics`.
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Mail sent on every state change (keepalived's `notification_email`).
    #[serde(default)]
    pub email: Option<EmailConfig>,
    pub instance: Vec<Instance>,
}

/// One VRRP virtual router.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub name: String,
    pub interface: String,
    pub virtual_router_id: u16,
    /// 1..=254; 255 only for the owner of the virtual addresses.
    pub priority: u16,
    #[serde(default = "defaults::advert_int", with = "duration")]
    pub advert_int: Duration,
    /// 2 (RFC 3768, keepalived's default) or 3 (RFC 5798).
    #[serde(default = "defaults::version")]
    pub version: u8,
    /// VRRPv2 simple password (auth type 1), at most 8 characters.
    #[serde(default)]
    pub auth_pass: Option<String>,
    pub virtual_ipaddress: Vec<IpNet>,
    #[serde(default = "defaults::yes")]
    pub preempt: bool,
    #[serde(default, with = "duration")]
    pub preempt_delay: Duration,
    /// Send adverts to these peers instead of multicast 224.0.0.18.
    #[serde(default)]
    pub unicast_peers: Vec<IpAddr>,
    /// Source address of adverts; default: the interface's primary address.
    #[serde(default)]
    pub unicast_src_ip: Option<IpAddr>,
    /// Program run on every state change with (instance, state, priority).
    #[serde(default)]
    pub notify: Option<PathBuf>,
    /// URL that receives a JSON POST on every state change.
    #[serde(default)]
    pub notify_webhook: Option<String>,
    /// Gratuitous ARPs sent at once on becoming MASTER (keepalived `garp_master_repeat`).
    #[serde(default = "defaults::garp_repeat")]
    pub garp_master_repeat: u32,
    /// Delay before the second burst of gratuitous ARPs (keepalived `garp_master_delay`; 0 = none).
    #[serde(default = "defaults::garp_delay", with = "duration")]
    pub garp_master_delay: Duration,
    /// Checks that can lower the priority or put the instance in FAULT.
    #[serde(default)]
    pub track: Vec<Track>,
}

/// One tracked condition. Exactly one of `http`, `process`, `script`, `interface` is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Track {
    /// GET this URL; 2xx is up.
    #[serde(default)]
    pub http: Option<String>,
    /// A process with this name (as in /proc/PID/comm) must run.
    #[serde(default)]
    pub process: Option<String>,
    /// Run this program; exit 0 is up (keepalived `track_script`).
    #[serde(default)]
    pub script: Option<String>,
    /// This interface must be up (keepalived `track_interface`).
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default = "defaults::track_interval", with = "duration")]
    pub interval: Duration,
    /// How long one probe may take before it counts as failed.
    #[serde(default = "defaults::track_timeout", with = "duration")]
    pub timeout: Duration,
    #[serde(default = "defaults::two")]
    pub fall: u32,
    #[serde(default = "defaults::two")]
    pub rise: u32,
    /// 0: a failing check puts the instance in FAULT. N: it lowers the priority by N.
    #[serde(default)]
    pub weight: u16,
}

impl Track {
    /// The configured kinds, for checking that exactly one is set.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.http.is_some() {
            k.push("http");
        }
        if self.process.is_some() {
            k.push("process");
        }
        if self.script.is_some() {
            k.push("script");
        }
        if self.interface.is_some() {
            k.push("interface");
        }
        k
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server `host:port` (plain SMTP, as keepalived's `smtp_server`).
    pub smtp_server: String,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default = "defaults::smtp_timeout", with = "duration")]
    pub timeout: Duration,
}

mod defaults {
    use super::*;
    pub fn advert_int() -> Duration {
        Duration::from_secs(1)
    }
    pub fn version() -> u8 {
        2
    }
    pub fn yes() -> bool {
        true
    }
    pub fn garp_repeat() -> u32 {
        5
    }
    pub fn garp_delay() -> Duration {
        Duration::from_secs(5)
    }
    pub fn track_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub fn track_timeout() -> Duration {
        Duration::from_secs(1)
    }
    pub fn two() -> u32 {
        2
    }
    pub fn smtp_timeout() -> Duration {
        Duration::from_secs(10)
    }
}

// === impl HaConfig ===

impl HaConfig {
    pub fn validate(&self, at: &KeyPath, out: &mut Findings) {
        if self.instance.is_empty() {
            out.push(at.key("instance"), "at least one [[ha.instance]] is needed");
        }
        let mut names = HashSet::new();
        let mut vrids = HashSet::new(); // (interface, vrid, version): RFC 5798 §5.2.3 scope
        for (i, inst) in self.instance.iter().enumerate() {
            let ip = at.key("instance").index(i);
            if inst.name.is_empty() {
                out.push(ip.key("name"), "must not be empty");
            } else if !names.insert(inst.name.as_str()) {
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
            inst.validate(&ip, out);
        }
        if let Some(e) = &self.email {
            let ep = at.key("email");
            if !e.smtp_server.contains(':') {
                out.push(
                    ep.key("smtp_server"),
                    "write host:port, e.g. \"127.0.0.1:25\"",
                );
            }
            if e.to.is_empty() {
                out.push(ep.key("to"), "at least one recipient is needed");
            }
        }
    }
}

// === impl Instance ===

impl Instance {
    fn validate(&self, ip: &KeyPath, out: &mut Findings) {
        if self.interface.is_empty() || self.interface.len() > 15 {
            out.push(
                ip.key("interface"),
                "an interface name has 1 to 15 characters",
            );
        }
        if !(1..=255).contains(&self.virtual_router_id) {
            out.push(
                ip.key("virtual_router_id"),
                format!("{} is outside 1..=255", self.virtual_router_id),
            );
        }
        match self.priority {
            0 => out.push(
                ip.key("priority"),
                "priority 0 is reserved (a master leaving); use 1..=254, or 255 for the address owner",
            ),
            1..=255 => {}
            p => out.push(
                ip.key("priority"),
                format!("{p} is outside 1..=254 (255 is only for the address owner)"),
            ),
        }
        match self.version {
            2 => {
                let ms = self.advert_int.as_millis();
                if ms == 0 || ms % 1000 != 0 || ms > 255_000 {
                    out.push(
                        ip.key("advert_int"),
                        format!(
                            "VRRPv2 advertises in whole seconds 1s..=255s, not {}; use version = 3 for sub-second intervals",
                            super::format_duration(self.advert_int)
                        ),
                    );
                }
            }
            3 => {
                let ms = self.advert_int.as_millis();
                if ms < 10 || ms % 10 != 0 || ms > 40_950 {
                    out.push(
                        ip.key("advert_int"),
                        format!(
                            "VRRPv3 needs a multiple of 10ms within 10ms..=40950ms, not {}",
                            super::format_duration(self.advert_int)
                        ),
                    );
                }
                if self.auth_pass.is_some() {
                    out.push(ip.key("auth_pass"), "VRRPv3 has no authentication (RFC 5798 removed it); remove auth_pass or use version = 2");
                }
            }
            v => out.push(
                ip.key("version"),
                format!("version {v} does not exist; use 2 or 3"),
            ),
        }
        if let Some(p) = &self.auth_pass {
            if p.is_empty() || p.len() > 8 || !p.is_ascii() {
                out.push(
                    ip.key("auth_pass"),
                    "a VRRPv2 password is 1 to 8 ASCII characters",
                );
            }
        }
        if self.virtual_ipaddress.is_empty() {
            out.push(
                ip.key("virtual_ipaddress"),
                "at least one virtual address is needed, e.g. [\"192.0.2.88/24\"]",
            );
        }
        let mut vips = HashSet::new();
        for (j, v) in self.virtual_ipaddress.iter().enumerate() {
            if !vips.insert(v.addr()) {
                out.push(
                    ip.key("virtual_ipaddress").index(j),
                    format!("{} is listed twice", v.addr()),
                );
            }
            if v.addr().is_unspecified() || v.addr().is_multicast() || v.addr().is_loopback() {
                out.push(
                    ip.key("virtual_ipaddress").index(j),
                    format!("{} cannot be a virtual address", v.addr()),
                );
            }
        }
        let families: HashSet<bool> = self
            .virtual_ipaddress
            .iter()
            .map(|v| v.addr().is_ipv4())
            .collect();
        if families.len() > 1 {
            out.push(ip.key("virtual_ipaddress"), "one instance carries either IPv4 or IPv6 addresses (RFC 5798 §7.1); split them into two instances");
        }
        if families.len() == 1 && families.contains(&false) && self.version == 2 {
            out.push(
                ip.key("virtual_ipaddress"),
                "IPv6 virtual addresses need version = 3 (VRRPv2 is IPv4 only)",
            );
        }
        for (j, t) in self.track.iter().enumerate() {
            let tp = ip.key("track").index(j);
            let kinds = t.kinds();
            if kinds.len() != 1 {
                out.push(
                    tp.clone(),
                    format!(
                        "set exactly one of http, process, script, interface (found {})",
                        if kinds.is_empty() {
                            "none".to_owned()
                        } else {
                            kinds.join(", ")
                        }
                    ),
                );
            }
            if let Some(u) = &t.http {
                if !u.starts_with("http://") {
                    out.push(
                        tp.key("http"),
                        "must be an http:// URL, e.g. \"http://127.0.0.1:9090/healthz\"",
                    );
                }
            }
            if t.interval < Duration::from_millis(10) {
                out.push(tp.key("interval"), "must be at least 10ms");
            }
            if t.timeout.is_zero() {
                out.push(tp.key("timeout"), "must be greater than 0s");
            }
            if t.fall == 0 {
                out.push(tp.key("fall"), "must be at least 1");
            }
            if t.rise == 0 {
                out.push(tp.key("rise"), "must be at least 1");
            }
            if t.weight > 253 {
                out.push(tp.key("weight"), format!("{} is outside 0..=253", t.weight));
            }
        }
        if let Some(u) = &self.notify_webhook {
            if !u.starts_with("http://") {
                out.push(ip.key("notify_webhook"), "must be an http:// URL");
            }
        }
        // Adverts go from one family to the same family (RFC 5798 §5.1.1 / §5.1.2).
        if let Some(first) = self.virtual_ipaddress.first() {
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
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn load(extra: &str) -> Result<Config, String> {
        let text = format!(
            "[ha]\n[[ha.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nversion = 3\nadvert_int = \"100ms\"\nvirtual_ipaddress = [\"192.0.2.88/24\"]\n{extra}"
        );
        Config::from_toml_str(&text, Path::new("stackd.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn unicast_addresses_must_match_the_vip_family() {
        let e = load("unicast_src_ip = \"2001:db8::1\"\nunicast_peers = [\"192.0.2.135\", \"2001:db8::2\"]\n").unwrap_err();
        assert!(
            e.contains("2001:db8::1 is not IPv4 like the virtual addresses"),
            "{e}"
        );
        assert!(e.contains("ha.instance[0].unicast_peers[1]"), "{e}");
        assert!(
            e.contains("stackd.toml:11"),
            "located at the peers line: {e}"
        );
    }

    #[test]
    fn unicast_addresses_of_the_same_family_pass() {
        let cfg = load("unicast_src_ip = \"192.0.2.133\"\nunicast_peers = [\"192.0.2.135\"]\n");
        assert!(cfg.is_ok(), "{cfg:?}");
    }
}
