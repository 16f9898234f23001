//! `[demo_backend]`: the Tomcat + Redis session manager part.
//!
//! Connection deadlines follow nginx's names and defaults where the demo is
//! exposed the same way (`client_header_timeout`, `client_body_timeout`,
//! `client_max_body_size`), because it listens on the LAN like Tomcat did.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diag::{Findings, KeyPath};
use super::format_duration;
use super::secret::{self, redact_url};
use super::units::{duration, ByteSize};

/// Longest session lifetime: a year (Redis takes more, `Instant` math in the
/// memory store would not).
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// Longest connection or Redis deadline.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The `[demo_backend]` table.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
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
    /// File whose first line is the Redis password (with the user from the
    /// URL, e.g. `redis://stackd@host/0`): keeps it out of this file and argv.
    #[serde(default)]
    pub redis_password_file: Option<PathBuf>,
    /// Idle lifetime of a session; slides on every access.
    #[serde(default = "defaults::session_ttl", with = "duration")]
    pub session_ttl: Duration,
    /// Lifetime of a session the client has not come back to yet: a request
    /// without a cookie (a crawler, a flood) costs a key for this long, and
    /// the session gets `session_ttl` on the client's second request.
    /// Capped at `session_ttl`.
    #[serde(default = "defaults::new_session_ttl", with = "duration")]
    pub new_session_ttl: Duration,
    /// `memory://` only: most sessions kept; the one closest to expiry goes first.
    #[serde(default = "defaults::memory_max_sessions")]
    pub memory_max_sessions: usize,
    /// How long a client may take to send a request's headers, and how long
    /// an idle keep-alive connection stays open (nginx `client_header_timeout`).
    #[serde(default = "defaults::client_timeout", with = "duration")]
    pub client_header_timeout: Duration,
    /// Longest pause between two reads of a request body (nginx `client_body_timeout`).
    #[serde(default = "defaults::client_timeout", with = "duration")]
    pub client_body_timeout: Duration,
    /// Largest request body `/echo` accepts; larger ones get 413 (`/login` takes 16k).
    #[serde(default = "defaults::client_max_body_size")]
    pub client_max_body_size: ByteSize,
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
    pub fn new_session_ttl() -> Duration {
        Duration::from_secs(60)
    }
    pub fn memory_max_sessions() -> usize {
        100_000
    }
    pub fn client_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn client_max_body_size() -> ByteSize {
        ByteSize(1 << 20)
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

impl fmt::Debug for DemoBackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoBackendConfig")
            .field("listen", &self.listen)
            .field("node_id", &self.node_id)
            .field("redis", &redact_url(&self.redis))
            .field("session_ttl", &self.session_ttl)
            .field("new_session_ttl", &self.new_session_ttl)
            .finish_non_exhaustive()
    }
}

impl DemoBackendConfig {
    /// A config with every default, for programs that build one (the lab).
    pub fn with_defaults(node_id: &str, redis: &str, listen: SocketAddr) -> DemoBackendConfig {
        DemoBackendConfig {
            listen,
            node_id: node_id.to_owned(),
            redis: redis.to_owned(),
            redis_password_file: None,
            session_ttl: defaults::session_ttl(),
            new_session_ttl: defaults::new_session_ttl(),
            memory_max_sessions: defaults::memory_max_sessions(),
            client_header_timeout: defaults::client_timeout(),
            client_body_timeout: defaults::client_timeout(),
            client_max_body_size: defaults::client_max_body_size(),
            redis_timeout: defaults::redis_timeout(),
            key_prefix: defaults::key_prefix(),
            redis_ca_file: None,
            cookie: CookieConfig::default(),
        }
    }

    /// The lifetime of a session seen once: `new_session_ttl`, at most `session_ttl`.
    pub fn first_ttl(&self) -> Duration {
        self.new_session_ttl.min(self.session_ttl)
    }

    pub fn validate(&self, at: &KeyPath, out: &mut Findings) {
        self.validate_store(at, out);
        self.validate_limits(at, out);
        self.validate_cookie(at, out);
    }

    fn validate_store(&self, at: &KeyPath, out: &mut Findings) {
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
                    redact_url(&self.redis),
                    REDIS_SCHEMES
                ),
            ),
        }
        if let Some(path) = &self.redis_password_file {
            let k = at.key("redis_password_file");
            if secret::url_has_password(&self.redis) {
                out.push(
                    k.clone(),
                    "the redis URL already has a password; keep it in one place",
                );
            }
            if self.redis.starts_with("memory") {
                out.push(k.clone(), "memory:// has no password");
            }
            if !out.skip_secret_files {
                if let Some(mode) = secret::world_readable(path) {
                    out.warn(k.clone(), secret::world_readable_warning(path, mode));
                }
                if let Err(e) = secret::read_secret_file(path) {
                    out.push(k, e);
                }
            }
        }
        if self.memory_max_sessions == 0 {
            out.push(at.key("memory_max_sessions"), "must be at least 1");
        }
        if self.redis_ca_file.is_some() && !self.redis.starts_with("rediss") {
            out.push(
                at.key("redis_ca_file"),
                "only used with TLS: make `redis` a rediss:// (or rediss+sentinel://, rediss+cluster://) URL, or remove this key",
            );
        }
    }

    fn validate_limits(&self, at: &KeyPath, out: &mut Findings) {
        for (key, ttl) in [
            ("session_ttl", self.session_ttl),
            ("new_session_ttl", self.new_session_ttl),
        ] {
            if ttl < Duration::from_secs(1) || ttl.subsec_nanos() != 0 {
                out.push(
                    at.key(key),
                    "must be whole seconds, at least 1s (Redis expires keys in seconds)",
                );
            } else if ttl > MAX_SESSION_TTL {
                out.push(
                    at.key(key),
                    format!("at most {}", format_duration(MAX_SESSION_TTL)),
                );
            }
        }

        for (key, d) in [
            ("redis_timeout", self.redis_timeout),
            ("client_header_timeout", self.client_header_timeout),
            ("client_body_timeout", self.client_body_timeout),
        ] {
            if d.is_zero() {
                out.push(at.key(key), "must be greater than 0s");
            } else if d > MAX_TIMEOUT {
                out.push(
                    at.key(key),
                    format!("at most {}", format_duration(MAX_TIMEOUT)),
                );
            }
        }
        if self.client_max_body_size.bytes() == 0 {
            out.push(at.key("client_max_body_size"), "must be at least 1 byte");
        }
    }

    fn validate_cookie(&self, at: &KeyPath, out: &mut Findings) {
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

    #[test]
    fn a_bad_url_is_reported_without_its_password() {
        let text = "[demo_backend]\nnode_id = \"n1\"\nredis = \"http://:pa/ss@h:6379/0\"\n";
        let e = Config::from_toml_str(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("http://:***@h:6379/0") && !e.contains("pa/ss"),
            "{e}"
        );
    }

    #[test]
    fn new_limits_have_defaults_and_bounds() {
        let d = check("").unwrap().demo_backend.unwrap();
        assert_eq!(d.new_session_ttl, std::time::Duration::from_secs(60));
        assert_eq!(d.client_header_timeout, std::time::Duration::from_secs(10));
        assert_eq!(d.client_max_body_size.bytes(), 1 << 20);
        let short = check("session_ttl = \"2s\"\n")
            .unwrap()
            .demo_backend
            .unwrap();
        assert_eq!(
            short.first_ttl(),
            std::time::Duration::from_secs(2),
            "capped at session_ttl"
        );
        for (extra, needle) in [
            ("session_ttl = \"1000years\"\n", "at most"),
            ("new_session_ttl = \"500ms\"\n", "whole seconds"),
            ("client_header_timeout = \"0s\"\n", "greater than 0s"),
            ("client_body_timeout = \"2h\"\n", "at most 1h"),
            ("memory_max_sessions = 0\n", "at least 1"),
        ] {
            let e = check(extra).unwrap_err().to_string();
            assert!(e.contains("t.toml:4") && e.contains(needle), "{extra}: {e}");
        }
    }

    #[test]
    fn redis_password_file_rules() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("redis.pass");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
        let key = format!("redis_password_file = \"{}\"\n", pw.display());
        assert!(check(&key).is_ok());
        let inline = format!("[demo_backend]\nnode_id = \"n1\"\nredis = \"redis://:x@h/0\"\n{key}");
        let e = Config::from_toml_str(&inline, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("already has a password"), "{e}");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o604)).unwrap();
        let text =
            format!("[demo_backend]\nnode_id = \"n1\"\nredis = \"redis://stackd@h/0\"\n{key}");
        let loaded = Config::from_toml_str_for(
            &text,
            Path::new("t.toml"),
            crate::config::Section::DemoBackend,
        )
        .unwrap();
        assert!(
            loaded.warnings[0]
                .message
                .contains("every user can read it"),
            "{:?}",
            loaded.warnings
        );
        let e = check("redis_password_file = \"/nonexistent\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read /nonexistent"), "{e}");
    }
}
