//! `[proxy]`: the nginx part. Keys and defaults follow nginx where nginx has
//! them (`client_max_body_size 1m`, `max_fails 1`, `fail_timeout 10s`,
//! `proxy_*_timeout 60s`), so an operator's habits carry over.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::diag::{Findings, KeyPath};
use super::units::{duration, AutoCount, ByteSize};

/// The `[proxy]` table.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Client-facing listeners: `"0.0.0.0:80"` or `{ addr = "0.0.0.0:443", tls = true }`.
    pub listen: Vec<Listen>,
    /// Admin listener for `/healthz`, `/status` and `/metrics`; keep it off the public side.
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Largest request body accepted; over it the client gets 413. `0` disables the check (nginx: 1m).
    #[serde(default = "defaults::client_max_body_size")]
    pub client_max_body_size: ByteSize,
    /// Largest total size of the request line and headers; over it, 431 (nginx: 4 x 8k buffers).
    #[serde(default = "defaults::max_header_size")]
    pub max_header_size: ByteSize,
    /// Time allowed to receive the request head; slow clients get 408 (nginx: 60s).
    #[serde(default = "defaults::sixty_secs", with = "duration")]
    pub client_header_timeout: Duration,
    /// Longest pause between two reads of the request body (nginx: 60s).
    #[serde(default = "defaults::sixty_secs", with = "duration")]
    pub client_body_timeout: Duration,
    /// Slowest request body accepted, in bytes per second, after a first
    /// `client_body_timeout` of grace (Apache's `MinRate`); `0` disables it.
    #[serde(default = "defaults::client_body_min_rate")]
    pub client_body_min_rate: ByteSize,
    /// A client that accepts no response bytes for this long is closed (nginx `send_timeout`: 60s).
    #[serde(default = "defaults::sixty_secs", with = "duration")]
    pub client_send_timeout: Duration,
    /// After an early answer (400, 408, 413, ...), how long at most the
    /// rest of the request is read and discarded so the client sees the
    /// answer (nginx `lingering_time`: 30s); `0s` closes at once.
    #[serde(default = "defaults::lingering_time", with = "duration")]
    pub lingering_time: Duration,
    /// While lingering, the longest wait for more data (nginx `lingering_timeout`: 5s).
    #[serde(default = "defaults::lingering_timeout", with = "duration")]
    pub lingering_timeout: Duration,
    /// How long an idle client keep-alive connection stays open (nginx: 75s).
    #[serde(default = "defaults::keepalive_timeout", with = "duration")]
    pub keepalive_timeout: Duration,
    /// Time to establish a connection to an upstream server; over it, 504 or the next server (nginx: 60s).
    #[serde(default = "defaults::sixty_secs", with = "duration")]
    pub connect_timeout: Duration,
    /// Longest pause while sending the request body upstream (nginx: 60s).
    #[serde(default = "defaults::sixty_secs", with = "duration")]
    pub send_timeout: Duration,
    /// Longest pause while waiting for / reading the upstream response, and
    /// longest silence (both ways) of a WebSocket tunnel (nginx: 60s).
    #[serde(default = "defaults::sixty_secs", with = "duration")]
    pub read_timeout: Duration,
    /// Idle keep-alive connections kept per upstream server and worker
    /// (nginx `keepalive`). `"auto"`: as many as the demand opened (at most
    /// `max_connections`), each closed after `upstream_keepalive_timeout`
    /// unused, so a burst does not turn into a close and a reconnect per
    /// request, and a quiet time gives the connections back. `0`: no reuse.
    #[serde(default)]
    pub upstream_keepalive: AutoCount,
    /// An idle upstream connection unused for this long is closed (nginx
    /// upstream `keepalive_timeout`: 60s); one the server closed goes
    /// within a second.
    #[serde(default = "defaults::sixty_secs", with = "duration")]
    pub upstream_keepalive_timeout: Duration,
    /// Most client connections open at once; further accepts wait (nginx `worker_connections`).
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Worker threads, each with its own single-threaded runtime, its own
    /// `SO_REUSEPORT` listener socket and its own idle upstream connections
    /// (nginx `worker_processes`). `"auto"`: one per CPU the process may run
    /// on. `0` serves on the process runtime's threads (listen changes then
    /// apply on reload).
    #[serde(default)]
    pub workers: AutoCount,
    /// Grace period for in-flight requests on SIGTERM.
    #[serde(default = "defaults::shutdown_grace", with = "duration")]
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long at most the proxy keeps accepting while
    /// `/healthz` says "draining", so that a `stackd ha` tracking it hands
    /// the VIP over first. It ends as soon as no virtual address of this
    /// file's `[ha]` is on the host. Unset: 5s when the file has `[ha]`
    /// addresses, 0s (stop accepting at once, as nginx) when it has none.
    #[serde(
        default,
        with = "super::units::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub drain_delay: Option<Duration>,
    /// Addresses whose X-Forwarded-For / Forwarded headers are trusted and kept.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Access log: a format (lines go to the process log, tracing target
    /// `access`), or a file and a format.
    #[serde(default)]
    pub access_log: AccessLogConfig,
    /// TLS certificates; the first is the default, others are chosen by SNI.
    #[serde(default)]
    pub tls: Vec<TlsCert>,
    #[serde(default)]
    pub upstream: Vec<Upstream>,
    #[serde(default)]
    pub route: Vec<Route>,
}

/// One client-facing listener.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Listen {
    /// Plain HTTP (HTTP/1.1, and h2c with prior knowledge).
    Plain(SocketAddr),
    /// A listener with options.
    Full(ListenOptions),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenOptions {
    pub addr: SocketAddr,
    /// Terminate TLS here with the `[[proxy.tls]]` certificates (h2 and http/1.1 by ALPN).
    #[serde(default)]
    pub tls: bool,
}

impl Listen {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Listen::Plain(a) => *a,
            Listen::Full(o) => o.addr,
        }
    }

    pub fn tls(&self) -> bool {
        matches!(self, Listen::Full(o) if o.tls)
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccessLog {
    /// nginx's `combined` format plus upstream and timings.
    #[default]
    Combined,
    /// One JSON object per request.
    Json,
    Off,
}

/// `access_log`: a format (`"combined"`, `"json"`, `"off"`), or a file of
/// its own, `{ path = "/var/log/stackd/access.log", format = "combined" }`,
/// reopened on SIGUSR1 (logrotate), as nginx's `access_log` is.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AccessLogConfig {
    pub format: AccessLog,
    /// Where lines go; `None`: the process log.
    pub path: Option<PathBuf>,
}

// === impl AccessLogConfig ===

impl AccessLogConfig {
    fn validate(&self, at: &KeyPath, out: &mut Findings) {
        let Some(path) = &self.path else { return };
        if self.format == AccessLog::Off {
            out.push(
                at.key("format"),
                "a file for an access log that is off: remove `path`, or pick \"combined\" or \"json\"",
            );
        }
        if !path.is_absolute() {
            out.push(
                at.key("path"),
                format!(
                    "{} is relative; give an absolute path (the units make /var/log/stackd/ writable)",
                    path.display()
                ),
            );
        }
    }
}

/// The table form of `access_log`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessLogFile {
    path: PathBuf,
    #[serde(default)]
    format: AccessLog,
}

impl<'de> Deserialize<'de> for AccessLogConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, value, MapAccess, Visitor};
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = AccessLogConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#""combined", "json", "off", or { path = "/var/log/stackd/access.log", format = "combined" }"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AccessLogConfig, E> {
                let format = AccessLog::deserialize(value::StrDeserializer::<E>::new(v))?;
                Ok(AccessLogConfig { format, path: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<AccessLogConfig, A::Error> {
                let f = AccessLogFile::deserialize(value::MapAccessDeserializer::new(m))?;
                Ok(AccessLogConfig {
                    format: f.format,
                    path: Some(f.path),
                })
            }
        }
        d.deserialize_any(Either)
    }
}

/// A certificate chain and key in PEM files.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SNI names this certificate answers; empty means "the names in the certificate".
    #[serde(default)]
    pub server_names: Vec<String>,
}

/// A named group of servers and how to spread requests over them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub name: String,
    #[serde(default)]
    pub balance: Balance,
    pub servers: Vec<Server>,
    /// Failed attempts within `fail_timeout` that mark a server down for `fail_timeout` (nginx: 1; 0 disables).
    #[serde(default = "defaults::max_fails")]
    pub max_fails: u32,
    #[serde(default = "defaults::fail_timeout", with = "duration")]
    pub fail_timeout: Duration,
    /// Active health checks; without them only passive health applies.
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// Cookie whose `.<node_id>` suffix pins a client to a server (`balance = "sticky"`).
    #[serde(default = "defaults::sticky_cookie")]
    pub sticky_cookie: String,
    /// Most servers tried for one request (nginx `proxy_next_upstream_tries`; 0 = all).
    #[serde(default)]
    pub next_upstream_tries: u32,
    /// Time limit for passing a request to the next server (0 = none).
    #[serde(default, with = "duration")]
    pub next_upstream_timeout: Duration,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// nginx's smooth weighted round robin.
    #[default]
    RoundRobin,
    IpHash,
    LeastConn,
    /// Route on the session cookie's `.<node_id>` suffix; fall back to round robin.
    Sticky,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub addr: SocketAddr,
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    /// Used only when every primary server is down.
    #[serde(default)]
    pub backup: bool,
    /// The backend's node id (Tomcat's jvmRoute), matched against the sticky cookie suffix.
    #[serde(default)]
    pub node_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "defaults::health_path")]
    pub path: String,
    #[serde(default = "defaults::one_sec", with = "duration")]
    pub interval: Duration,
    #[serde(default = "defaults::one_sec", with = "duration")]
    pub timeout: Duration,
    /// Consecutive failures that mark a server down.
    #[serde(default = "defaults::two")]
    pub fall: u32,
    /// Consecutive successes that mark it up again.
    #[serde(default = "defaults::two")]
    pub rise: u32,
}

/// Which upstream serves which requests.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `test.example.com` or `*.example.com`; absent matches any host.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix; the longest matching prefix wins.
    #[serde(default = "defaults::root_path")]
    pub path: String,
    pub upstream: String,
    /// Response headers added to every answer (nginx `add_header`).
    #[serde(default)]
    pub add_headers: BTreeMap<String, String>,
}

mod defaults {
    use super::*;
    pub fn client_max_body_size() -> ByteSize {
        ByteSize(1 << 20)
    }
    pub fn max_header_size() -> ByteSize {
        ByteSize(32 << 10)
    }
    pub fn sixty_secs() -> Duration {
        Duration::from_secs(60)
    }
    pub fn keepalive_timeout() -> Duration {
        Duration::from_secs(75)
    }
    pub fn client_body_min_rate() -> ByteSize {
        ByteSize(512)
    }
    pub fn lingering_time() -> Duration {
        Duration::from_secs(30)
    }
    pub fn lingering_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn max_connections() -> usize {
        10_240
    }
    pub fn shutdown_grace() -> Duration {
        Duration::from_secs(10)
    }
    pub fn max_fails() -> u32 {
        1
    }
    pub fn fail_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn sticky_cookie() -> String {
        "SESSIONID".into()
    }
    pub fn weight() -> u32 {
        1
    }
    pub fn health_path() -> String {
        "/healthz".into()
    }
    pub fn one_sec() -> Duration {
        Duration::from_secs(1)
    }
    pub fn two() -> u32 {
        2
    }
    pub fn root_path() -> String {
        "/".into()
    }
}

// === impl ProxyConfig ===

impl ProxyConfig {
    /// Worker threads to run: `auto` is one per CPU this process may use
    /// (its affinity mask and cgroup quota, as nginx's `worker_processes auto`
    /// counts CPUs); 0 serves on the process runtime.
    pub fn worker_count(&self) -> usize {
        self.workers
            .or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
    }

    /// Idle connections kept per upstream server and worker: `auto` is
    /// bounded by `max_connections` (demand cannot open more at once).
    pub fn upstream_keepalive_cap(&self) -> usize {
        self.upstream_keepalive.or_else(|| self.max_connections)
    }

    /// Checks what serde cannot: references, ranges and combinations.
    pub fn validate(&self, at: &KeyPath, out: &mut Findings) {
        self.access_log.validate(&at.key("access_log"), out);
        if self.listen.is_empty() {
            out.push(
                at.key("listen"),
                "at least one listen address is needed, e.g. listen = [\"0.0.0.0:80\"]",
            );
        }
        let mut seen_listen = HashSet::new();
        for (i, l) in self.listen.iter().enumerate() {
            if !seen_listen.insert(l.addr()) {
                out.push(
                    at.key("listen").index(i),
                    format!("{} is listed twice", l.addr()),
                );
            }
            if l.tls() && self.tls.is_empty() {
                out.push(
                    at.key("listen").index(i),
                    "a TLS listener needs at least one [[proxy.tls]] certificate (cert = \"...\", key = \"...\")",
                );
            }
        }
        if let Some(admin) = self.admin {
            if seen_listen.contains(&admin) {
                out.push(
                    at.key("admin"),
                    format!(
                        "{admin} is also a client listener; give the admin listener its own port"
                    ),
                );
            }
        }
        if self.max_connections == 0 {
            out.push(at.key("max_connections"), "must be at least 1");
        }
        if self.workers.or_else(|| 0) > 256 {
            out.push(
                at.key("workers"),
                format!(
                    "{} worker threads is more than 256; use about one per CPU core, or \"auto\"",
                    self.workers
                ),
            );
        }
        if self.upstream_keepalive_timeout.is_zero() {
            out.push(
                at.key("upstream_keepalive_timeout"),
                "must be greater than 0s (upstream_keepalive = 0 turns reuse off)",
            );
        }
        if self.max_header_size.bytes() < 1024 {
            out.push(at.key("max_header_size"), "must be at least 1k");
        }
        for (name, d) in [
            ("client_header_timeout", self.client_header_timeout),
            ("client_body_timeout", self.client_body_timeout),
            ("client_send_timeout", self.client_send_timeout),
            ("connect_timeout", self.connect_timeout),
            ("send_timeout", self.send_timeout),
            ("read_timeout", self.read_timeout),
        ] {
            if d.is_zero() {
                out.push(at.key(name), "must be greater than 0s");
            }
        }

        if !self.lingering_time.is_zero() && self.lingering_timeout.is_zero() {
            out.push(
                at.key("lingering_timeout"),
                "must be greater than 0s while lingering_time is set (lingering_time = \"0s\" turns lingering off)",
            );
        }

        let mut names = HashSet::new();
        for (i, u) in self.upstream.iter().enumerate() {
            let up = at.key("upstream").index(i);
            if u.name.is_empty() {
                out.push(up.key("name"), "must not be empty");
            } else if !names.insert(u.name.as_str()) {
                out.push(
                    up.key("name"),
                    format!("duplicate upstream name \"{}\"", u.name),
                );
            }
            u.validate(&up, out);
        }
        if self.route.is_empty() && !self.upstream.is_empty() {
            out.push(
                at.key("route"),
                format!(
                    "no [[proxy.route]]: add one, e.g. path = \"/\", upstream = \"{}\"",
                    self.upstream[0].name
                ),
            );
        }
        let mut routes = HashSet::new();
        for (i, r) in self.route.iter().enumerate() {
            let rp = at.key("route").index(i);
            if !names.contains(r.upstream.as_str()) {
                let known: Vec<_> = self.upstream.iter().map(|u| u.name.as_str()).collect();
                out.push(
                    rp.key("upstream"),
                    format!(
                        "unknown upstream \"{}\"; defined upstreams: {:?}",
                        r.upstream, known
                    ),
                );
            }
            if !r.path.starts_with('/') {
                out.push(
                    rp.key("path"),
                    format!("\"{}\" must start with '/'", r.path),
                );
            }
            if let Some(h) = &r.host {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                if bare.is_empty() || bare.contains(['*', '/', ' ']) {
                    out.push(
                        rp.key("host"),
                        format!(
                            "\"{h}\" is not a host name; use \"example.com\" or \"*.example.com\""
                        ),
                    );
                }
            }
            if !routes.insert((
                r.host.as_deref().map(str::to_ascii_lowercase),
                r.path.as_str(),
            )) {
                out.push(rp.clone(), "another route has the same host and path");
            }
            for name in r.add_headers.keys() {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    out.push(
                        rp.key("add_headers").key(name),
                        format!("\"{name}\" is not a valid header name"),
                    );
                }
            }
            for (name, value) in &r.add_headers {
                if http::HeaderValue::from_str(value).is_err() {
                    out.push(
                        rp.key("add_headers").key(name),
                        "value has characters not allowed in a header",
                    );
                }
            }
        }
    }
}

// === impl Upstream ===

impl Upstream {
    fn validate(&self, up: &KeyPath, out: &mut Findings) {
        if self.servers.is_empty() {
            out.push(up.key("servers"), "an upstream needs at least one server");
        } else if self.servers.iter().all(|s| s.backup) {
            out.push(
                up.key("servers"),
                "every server is a backup; at least one must be primary",
            );
        }
        let mut addrs = HashSet::new();
        for (j, s) in self.servers.iter().enumerate() {
            let sp = up.key("servers").index(j);
            if s.weight == 0 || s.weight > 1000 {
                out.push(
                    sp.key("weight"),
                    format!("weight {} is outside 1..=1000", s.weight),
                );
            }
            if !addrs.insert(s.addr) {
                out.push(
                    sp.key("addr"),
                    format!("{} is listed twice in this upstream", s.addr),
                );
            }
            if s.addr.port() == 0 {
                out.push(sp.key("addr"), "port 0 is not a server port");
            }
            if let Some(n) = &s.node_id {
                if n.is_empty() || n.contains(['.', ';', ' ']) {
                    out.push(
                        sp.key("node_id"),
                        "a node id is a non-empty word without '.', ';' or spaces",
                    );
                }
            }
        }
        if self.balance == Balance::Sticky && self.servers.iter().all(|s| s.node_id.is_none()) {
            out.push(
                up.key("balance"),
                "sticky needs node_id on the servers, e.g. { addr = \"...\", node_id = \"137server1\" }",
            );
        }
        if self.max_fails > 0 && self.fail_timeout.is_zero() {
            out.push(
                up.key("fail_timeout"),
                "must be greater than 0s when max_fails is set",
            );
        }
        if let Some(h) = &self.health {
            let hp = up.key("health");
            if !h.path.starts_with('/') {
                out.push(hp.key("path"), "must start with '/'");
            }
            if h.interval < Duration::from_millis(10) {
                out.push(hp.key("interval"), "must be at least 10ms");
            }
            if h.timeout.is_zero() {
                out.push(hp.key("timeout"), "must be greater than 0s");
            }
            if h.fall == 0 {
                out.push(hp.key("fall"), "must be at least 1");
            }
            if h.rise == 0 {
                out.push(hp.key("rise"), "must be at least 1");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{AutoCount, Config};

    fn check(extra: &str) -> Result<Config, String> {
        let text = format!(
            "[proxy]\nlisten = [\"127.0.0.1:8080\"]\n{extra}\n[[proxy.upstream]]\nname = \"a\"\nservers = [{{ addr = \"127.0.0.1:9000\" }}]\n[[proxy.route]]\nupstream = \"a\"\n"
        );
        Config::from_toml_str(&text, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn workers_and_upstream_keepalive_default_to_auto() {
        let cfg = check("workers = 2\nupstream_keepalive = 64").unwrap();
        let p = cfg.proxy.unwrap();
        assert_eq!(p.workers, AutoCount::Fixed(2));
        assert_eq!(p.upstream_keepalive, AutoCount::Fixed(64));
        let p = check("").unwrap().proxy.unwrap();
        assert_eq!(p.workers, AutoCount::Auto);
        assert_eq!(p.upstream_keepalive, AutoCount::Auto);
        assert_eq!(p.upstream_keepalive_timeout, Duration::from_secs(60));
        assert!(p.worker_count() >= 1);
        let p = check("workers = \"auto\"\nupstream_keepalive = \"auto\"").unwrap();
        assert_eq!(p.proxy.unwrap().workers, AutoCount::Auto);
        let p = check("workers = 0").unwrap().proxy.unwrap();
        assert_eq!(p.worker_count(), 0);
    }

    #[test]
    fn bad_counts_are_located() {
        let e = check("workers = \"many\"").unwrap_err();
        assert!(
            e.contains("t.toml:3:11")
                && e.contains("workers")
                && e.contains("\"auto\" or a number"),
            "{e}"
        );
        let e = check("upstream_keepalive = -1").unwrap_err();
        assert!(
            e.contains("t.toml:3:") && e.contains("upstream_keepalive"),
            "{e}"
        );
        let e = check("upstream_keepalive_timeout = \"0s\"").unwrap_err();
        assert!(
            e.contains("t.toml:3:") && e.contains("proxy.upstream_keepalive_timeout"),
            "{e}"
        );
    }

    #[test]
    fn lifecycle_keys_have_nginx_defaults_and_are_located() {
        let p = check("").unwrap().proxy.unwrap();
        assert_eq!(p.client_send_timeout, std::time::Duration::from_secs(60));
        assert_eq!(p.lingering_time, std::time::Duration::from_secs(30));
        assert_eq!(p.lingering_timeout, std::time::Duration::from_secs(5));
        assert_eq!(p.client_body_min_rate.bytes(), 512);
        let e = check("client_send_timeout = \"0s\"").unwrap_err();
        assert!(
            e.contains("t.toml:3:") && e.contains("proxy.client_send_timeout"),
            "{e}"
        );
        let e = check("lingering_timeout = \"0s\"").unwrap_err();
        assert!(
            e.contains("t.toml:3:") && e.contains("proxy.lingering_timeout"),
            "{e}"
        );
        let e = check("client_body_min_rate = \"fast\"").unwrap_err();
        assert!(
            e.contains("t.toml:3:") && e.contains("client_body_min_rate"),
            "{e}"
        );
        assert!(check("lingering_time = \"0s\"\nlingering_timeout = \"0s\"").is_ok());
    }

    #[test]
    fn workers_over_256_is_located() {
        let e = check("workers = 1000").unwrap_err();
        assert!(
            e.contains("t.toml:3:") && e.contains("proxy.workers") && e.contains("more than 256"),
            "{e}"
        );
    }
}
