//! `[ha]`: the keepalived part. One `[[ha.instance]]` per `vrrp_instance`.
//! Defaults follow keepalived (`advert_int 1`, `preempt`, `garp_master_repeat 5`,
//! `garp_master_delay 5`), except that durations carry units and
//! `garp_master_refresh` is on (2s).
//!
//! This module is the file's shape; [`spec`] checks it and turns it into the
//! typed [`HaSpec`] that `stackd ha` runs.

mod build;
pub mod spec;

pub use spec::{
    AdvertInterval, AuthPass, Check, Garp, HaSpec, InstanceSpec, OnDown, Priority, TrackSpec,
    Version, Vrid,
};

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::diag::{Findings, KeyPath};
use super::secret::Secret;
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
    pub auth_pass: Option<Secret>,
    /// File whose first line is the VRRPv2 password, instead of `auth_pass`:
    /// readable by `stackd ha` only, not by the proxy that shares this file.
    #[serde(default)]
    pub auth_pass_file: Option<PathBuf>,
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
    /// `http://` or `https://` URL that receives a JSON POST on every state change.
    #[serde(default)]
    pub notify_webhook: Option<String>,
    /// Gratuitous ARPs sent at once on becoming MASTER (keepalived `garp_master_repeat`).
    #[serde(default = "defaults::garp_repeat")]
    pub garp_master_repeat: u32,
    /// Delay before the second burst of gratuitous ARPs (keepalived `garp_master_delay`; 0 = none).
    #[serde(default = "defaults::garp_delay", with = "duration")]
    pub garp_master_delay: Duration,
    /// While MASTER, one gratuitous ARP per address this often (keepalived
    /// `garp_master_refresh`, off there by default), so a neighbour that
    /// missed the bursts or kept a split brain's loser is right within one
    /// interval plus its 1s ARP locktime. `0s` turns it off.
    #[serde(default = "defaults::garp_refresh", with = "duration")]
    pub garp_master_refresh: Duration,
    /// Checks that can lower the priority or put the instance in FAULT.
    #[serde(default)]
    pub track: Vec<Track>,
}

/// One tracked condition. Exactly one of `http`, `process`, `script`, `interface` is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Track {
    /// GET this `http://` or `https://` URL; 2xx is up.
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
    pub fn garp_refresh() -> Duration {
        Duration::from_secs(2)
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
    /// Every problem of `[ha]` (the spec built on the way is dropped).
    pub fn validate(&self, at: &KeyPath, out: &mut Findings) {
        let _ = self.spec_at(at, out);
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
