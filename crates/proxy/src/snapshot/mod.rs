//! The running configuration as the hot path sees it: one immutable
//! [`Snapshot`] behind an `ArcSwap`, replaced whole on reload.
//!
//! Requests load the current snapshot once and keep it to their end, so a
//! reload never changes a request half way. Live per-server state (health,
//! counters, idle connections) and per-upstream statistics are carried over
//! from the previous snapshot by upstream name and server address.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use stackd_common::config::proxy::AccessLog;
use stackd_common::config::ProxyConfig;

use crate::error::ProxyError;
use crate::route::Router;
use crate::stats::UpstreamStats;
use crate::upstream::{ServerState, UpstreamRt};

/// Limits and timeouts, resolved to plain numbers.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// 0: no limit.
    pub max_body: u64,
    pub max_header: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub connect_timeout: Duration,
    pub send_timeout: Duration,
    pub read_timeout: Duration,
    pub upstream_keepalive: usize,
}

#[derive(Debug)]
pub struct Snapshot {
    pub router: Router,
    pub upstreams: Vec<Arc<UpstreamRt>>,
    /// Requests answered without reaching an upstream (404, 400, 413 ...).
    pub unrouted: Arc<UpstreamStats>,
    pub trusted: Vec<IpNet>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: Limits,
    pub access_log: AccessLog,
    pub cfg: ProxyConfig,
}

// === impl Snapshot ===

impl Snapshot {
    /// Builds a snapshot from a validated config, reusing live state from `prev`.
    pub fn build(cfg: ProxyConfig, prev: Option<&Snapshot>) -> Result<Snapshot, ProxyError> {
        let tls = crate::tls::server_config(&cfg.tls)?;
        let upstreams: Vec<Arc<UpstreamRt>> = cfg
            .upstream
            .iter()
            .map(|u| {
                let old = prev.and_then(|p| p.upstreams.iter().find(|o| *o.name == *u.name));
                let stats = old.map(|o| o.stats.clone()).unwrap_or_default();
                Arc::new(UpstreamRt::new(u, stats, |addr| {
                    old.and_then(|o| o.all().find(|s| s.state.addr == addr))
                        .map(|s| s.state.clone())
                        .unwrap_or_else(|| Arc::new(ServerState::new(addr)))
                }))
            })
            .collect();
        let router = Router::new(&cfg.route, |name| {
            upstreams.iter().position(|u| *u.name == *name)
        });
        let limits = Limits {
            max_body: cfg.client_max_body_size.bytes(),
            max_header: usize::try_from(cfg.max_header_size.bytes()).unwrap_or(usize::MAX),
            header_timeout: cfg.client_header_timeout,
            body_timeout: cfg.client_body_timeout,
            keepalive_timeout: cfg.keepalive_timeout,
            connect_timeout: cfg.connect_timeout,
            send_timeout: cfg.send_timeout,
            read_timeout: cfg.read_timeout,
            upstream_keepalive: cfg.upstream_keepalive,
        };
        Ok(Snapshot {
            router,
            upstreams,
            unrouted: prev.map(|p| p.unrouted.clone()).unwrap_or_default(),
            trusted: cfg.trusted_proxies.clone(),
            tls,
            limits,
            access_log: cfg.access_log,
            cfg,
        })
    }

    /// Drops idle connections to servers that `next` no longer lists.
    pub fn release_removed(&self, next: &Snapshot) {
        for u in &self.upstreams {
            for s in u.all() {
                let kept = next
                    .upstreams
                    .iter()
                    .any(|n| n.all().any(|x| Arc::ptr_eq(&x.state, &s.state)));
                if !kept {
                    s.state.pool.clear();
                }
            }
        }
    }
}
