//! `[demo_backend]`: the Tomcat + Redis session manager part.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diag::{Findings, KeyPath};
use super::units::duration;

/// The `[demo_backend]` table.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemoBackendConfig {
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// This node's id, like Tomcat's `jvmRoute`; appended to session ids for sticky routing.
    pub node_id: String,
    /// Where sessions live: `redis://[user:pass@]host:port/db`, `rediss://...` (TLS),
    /// `redis+sentinel://host:26379,host2:26379/mymaster[/db]`, or
    /// `redis+cluster://host:6379,host2:6379`. `memory://` keeps them in this process only.
    pub redis: String,
    /// Idle lifetime of a session; slides on every access.
    #[serde(default = "defaults::session_ttl", with = "duration")]
    pub session_ttl: Duration,
    /// Longest a Redis call may take before the request fails with 503.
    #[serde(default = "defaults::redis_timeout", with = "duration")]
    pub redis_timeout: Duration,
    /// Prefix of session keys in Redis.
    #[serde(default = "defaults::key_prefix")]
    pub key_prefix: String,
    /// PEM file of the CA that signed the Redis servers' TLS certificates, for
    /// `rediss://` URLs when that CA is not in the system trust store (a
    /// private CA). Applies to the data nodes (server, master, cluster nodes).
    #[serde(default)]
    pub redis_ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub cookie: CookieConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CookieConfig {
    #[serde(default = "defaults::cookie_name")]
    pub name: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default = "defaults::cookie_path")]
    pub path: String,
    /// Send only over HTTPS. HttpOnly is always set.
    #[serde(default)]
    pub secure: bool,
    #[serde(default)]
    pub same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: defaults::cookie_name(),
            domain: None,
            path: defaults::cookie_path(),
            secure: false,
            same_site: SameSite::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    #[default]
    Lax,
    None,
}

/// URL schemes the session store understands.
pub const REDIS_SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
    "memory",
];

mod defaults {
    use super::*;
    pub fn listen() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 8080))
    }
    pub fn session_ttl() -> Duration {
        Duration::from_secs(1800)
    }
    pub fn redis_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub fn key_prefix() -> String {
        "stackd:session:".into()
    }
    pub fn cookie_name() -> String {
        "SESSIONID".into()
    }
    pub fn cookie_path() -> String {
        "/".into()
    }
}

// === impl DemoBackendConfig ===

impl DemoBackendConfig {
    pub fn validate(&self, at: &KeyPath, out: &mut Findings) {
        if self.node_id.is_empty()
            || !self
                .node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            out.push(
                at.key("node_id"),
                "a node id is letters, digits, '-' or '_' (it becomes the session id suffix), e.g. \"137server1\"",
            );
        }
        match self.redis.split_once("://") {
            Some((scheme, _)) if REDIS_SCHEMES.contains(&scheme) => {}
            _ => out.push(
                at.key("redis"),
                format!(
                    "\"{}\" is not a session store URL; use one of the schemes {:?}",
                    self.redis, REDIS_SCHEMES
                ),
            ),
        }
        if self.session_ttl < Duration::from_secs(1) || self.session_ttl.subsec_nanos() != 0 {
            out.push(
                at.key("session_ttl"),
                "must be whole seconds, at least 1s (Redis expires keys in seconds)",
            );
        }
        if self.redis_ca_file.is_some() && !self.redis.starts_with("rediss") {
            out.push(
                at.key("redis_ca_file"),
                "only used with TLS: make `redis` a rediss:// (or rediss+sentinel://, rediss+cluster://) URL, or remove this key",
            );
        }
        if self.redis_timeout.is_zero() {
            out.push(at.key("redis_timeout"), "must be greater than 0s");
        }
        let c = &self.cookie;
        if c.name.is_empty()
            || !c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            out.push(
                at.key("cookie").key("name"),
                "a cookie name is letters, digits, '-', '_' or '.'",
            );
        }
        if let Some(d) = &c.domain {
            if d.is_empty()
                || !d
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-.".contains(ch))
            {
                out.push(
                    at.key("cookie").key("domain"),
                    format!("\"{d}\" is not a cookie domain: letters, digits, '-' and '.', e.g. \"example.com\""),
                );
            }
        }
        if self.key_prefix.is_empty()
            || self
                .key_prefix
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control())
        {
            out.push(
                at.key("key_prefix"),
                "must be non-empty without spaces, e.g. \"stackd:session:\" (an empty prefix mixes sessions with other keys)",
            );
        }
        if !c.path.starts_with('/') {
            out.push(at.key("cookie").key("path"), "must start with '/'");
        }
        if c.same_site == SameSite::None && !c.secure {
            out.push(
                at.key("cookie").key("same_site"),
                "browsers reject SameSite=None without secure = true",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::ConfigError;

    fn check(extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[demo_backend]\nnode_id = \"n1\"\nredis = \"redis://127.0.0.1:6379/\"\n{extra}"
        );
        Config::from_toml_str(&text, Path::new("t.toml"))
    }

    #[test]
    fn cookie_domain_and_key_prefix_are_checked_with_location() {
        let e = check("key_prefix = \"a b\"\ncookie = { domain = \"ex ample.com\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:4") && e.contains("key_prefix"), "{e}");
        assert!(
            e.contains("t.toml:5") && e.contains("not a cookie domain"),
            "{e}"
        );
    }

    #[test]
    fn good_domain_and_prefix_pass() {
        let cfg = check("key_prefix = \"app1:s:\"\ncookie = { domain = \"shop.example.com\", secure = true, same_site = \"None\" }\n").unwrap();
        let d = cfg.demo_backend.unwrap();
        assert_eq!(d.cookie.domain.as_deref(), Some("shop.example.com"));
        assert_eq!(d.session_ttl, std::time::Duration::from_secs(1800));
    }

    #[test]
    fn redis_ca_file_needs_a_tls_url() {
        let e = check("redis_ca_file = \"/etc/ssl/redis-ca.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml:4") && e.contains("only used with TLS"),
            "{e}"
        );
        let text = "[demo_backend]\nnode_id = \"n1\"\nredis = \"rediss://r:6380/\"\nredis_ca_file = \"/etc/ssl/redis-ca.pem\"\n";
        assert!(Config::from_toml_str(text, Path::new("t.toml")).is_ok());
    }

    #[test]
    fn ttl_in_fractions_of_a_second_is_refused() {
        let e = check("session_ttl = \"1500ms\"\n").unwrap_err().to_string();
        assert!(e.contains("whole seconds"), "{e}");
    }
}
