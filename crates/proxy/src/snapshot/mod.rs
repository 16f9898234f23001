//! The running configuration as the hot path sees it: one immutable
//! [`Snapshot`] behind an `ArcSwap`, replaced whole on reload.
//!
//! Requests load the current snapshot once and keep it to their end, so a
//! reload never changes a request half way. Live per-server state (health,
//! counters, idle connections) and per-upstream statistics are carried over
//! from the previous snapshot by upstream name and server address.

pub(crate) mod route;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use stackd_common::config::proxy::AccessLog;
use stackd_common::config::ProxyConfig;
use stackd_common::logfile::LogFile;

use crate::error::{ErrorKind, ProxyError};
use crate::listen::lifecycle::Timeouts;
use crate::observe::stats::UpstreamStats;
use crate::upstream::{ServerState, UpstreamRt};
use route::Router;

/// Limits and timeouts, resolved to plain numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// `client_max_body_size`; 0: no limit.
    pub(crate) max_body: u64,
    /// `max_header_size`: the request head.
    pub(crate) max_header: usize,
    /// The largest upstream response head we read.
    pub(crate) max_upstream_header: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) body_timeout: Duration,
    /// Bytes per second; 0: none.
    pub(crate) body_min_rate: u64,
    pub(crate) client_send_timeout: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) lingering_time: Duration,
    pub(crate) lingering_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// Upstream side: longest wait for the upstream to take request bytes.
    pub(crate) send_timeout: Duration,
    /// Upstream side: longest wait for response bytes; also a tunnel's silence.
    pub(crate) read_timeout: Duration,
    /// Idle connections kept per server and worker (`auto` resolved).
    pub(crate) upstream_keepalive: usize,
    pub(crate) upstream_keepalive_timeout: Duration,
}

/// The running configuration, immutable; replaced whole on reload.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) router: Router,
    pub(crate) upstreams: Vec<Arc<UpstreamRt>>,
    /// Requests answered without reaching an upstream (404, 400, 413 ...).
    pub(crate) unrouted: Arc<UpstreamStats>,
    pub(crate) trusted: Vec<IpNet>,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) limits: Limits,
    /// The client-side timeouts from `limits`, shared by every connection
    /// accepted under this config.
    pub(crate) timeouts: Arc<Timeouts>,
    pub(crate) access_log: AccessLog,
    /// `access_log = { path }`: lines go there instead of the process log.
    pub(crate) access_file: Option<Arc<LogFile>>,
    pub(crate) cfg: ProxyConfig,
}

// === impl Snapshot ===

impl Snapshot {
    /// Builds a snapshot from a validated config, reusing live state from `prev`.
    pub(crate) fn build(cfg: ProxyConfig, prev: Option<&Snapshot>) -> Result<Snapshot, ProxyError> {
        let tls = tls::server_config(&cfg.tls)?;
        let access_file = match &cfg.access_log.path {
            Some(path) => Some(LogFile::shared(path).map_err(|error| {
                ProxyError::proxy(ErrorKind::AccessLog {
                    path: path.clone(),
                    error,
                })
            })?),
            None => None,
        };
        let upstreams: Vec<Arc<UpstreamRt>> = cfg
            .upstream
            .iter()
            .map(|u| {
                let old = prev.and_then(|p| p.upstreams.iter().find(|o| *o.name == *u.name));
                let stats = old.map(|o| o.stats.clone()).unwrap_or_default();
                Arc::new(UpstreamRt::new(u, stats, |addr| {
                    old.and_then(|o| o.all().find(|s| s.state.addr() == addr))
                        .map(|s| s.state.clone())
                        .unwrap_or_else(|| Arc::new(ServerState::new(addr)))
                }))
            })
            .collect();
        let router = Router::new(&cfg.route, |name| {
            upstreams.iter().position(|u| *u.name == *name)
        });
        let max_header = usize::try_from(cfg.max_header_size.bytes()).unwrap_or(usize::MAX);
        let limits = Limits {
            max_body: cfg.client_max_body_size.bytes(),
            max_header,
            max_upstream_header: max_header.max(64 << 10),
            header_timeout: cfg.client_header_timeout,
            body_timeout: cfg.client_body_timeout,
            body_min_rate: cfg.client_body_min_rate.bytes(),
            client_send_timeout: cfg.client_send_timeout,
            keepalive_timeout: cfg.keepalive_timeout,
            lingering_time: cfg.lingering_time,
            lingering_timeout: cfg.lingering_timeout,
            connect_timeout: cfg.connect_timeout,
            send_timeout: cfg.send_timeout,
            read_timeout: cfg.read_timeout,
            upstream_keepalive: cfg.upstream_keepalive_cap(),
            upstream_keepalive_timeout: cfg.upstream_keepalive_timeout,
        };
        Ok(Snapshot {
            router,
            upstreams,
            unrouted: prev.map(|p| p.unrouted.clone()).unwrap_or_default(),
            trusted: cfg.trusted_proxies.clone(),
            tls,
            timeouts: Arc::new(crate::listen::timeouts(&limits)),
            limits,
            access_log: cfg.access_log.format,
            access_file,
            cfg,
        })
    }

    /// Drops idle connections to servers that `next` no longer lists.
    pub(crate) fn release_removed(&self, next: &Snapshot) {
        for u in &self.upstreams {
            for s in u.all() {
                let kept = next
                    .upstreams
                    .iter()
                    .any(|n| n.all().any(|x| Arc::ptr_eq(&x.state, &s.state)));
                if !kept {
                    s.state.pool().clear();
                }
            }
        }
    }
}
