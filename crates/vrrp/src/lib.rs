//! VRRP virtual-IP failover: the keepalived part of stackd (issue 6).
//!
//! Interoperates on the wire with keepalived (VRRPv2 with PASS auth, VRRPv3),
//! so a cluster can replace one keepalived node at a time.
//!
//! # Layout
//! Pure cores (no sockets, no clock):
//! - [`packet`]: VRRPv2/v3 encode/decode; [`checksum`]; [`ip`]: the IPv4 header.
//! - [`validate`]: RFC receive checks, each reject with a metric label.
//! - [`timers`]: Skew_Time and Master_Down_Interval.
//! - [`state`]: the RFC 5798 §6 state machine, events in, actions out.
//! - [`track`]: fall/rise hysteresis and effective priority.
//! - [`garp`]: gratuitous ARP / unsolicited NA frames (and their AF_PACKET send).
//!
//! Edges:
//! - [`driver`]: one async loop per instance, executing actions via [`ports`].
//! - [`socket`] (raw IP 112, IPv4 and IPv6), [`netlink`] (VIPs), [`iface`] (addresses, link).
//! - [`probe`] (tracking checks), [`notify`] (script, webhook, mail),
//!   [`status`] (`/status` JSON and `/metrics`).
//!
//! ```text
//! run ─┬─ admin server (/healthz /status /metrics)
//!      └─ per instance: Driver::run ◄── probe tasks (one per track entry)
//! ```

pub mod checksum;
pub mod garp;
pub mod ip;
pub mod packet;
pub mod state;
pub mod timers;
pub mod track;
pub mod validate;

pub mod driver;
pub mod iface;
pub mod netlink;
pub mod notify;
pub mod ports;
pub mod probe;
pub mod socket;
mod socket6;
pub mod status;

mod setup;

use std::sync::Arc;

use prometheus_client::registry::Registry;
use stackd_common::admin::Admin;
use stackd_common::config::HaConfig;
use stackd_common::http_client::HttpClient;
use stackd_common::CancellationToken;

/// Why `stackd ha` could not run.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("instance {instance}: {what}: {source}")]
    Setup {
        instance: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("instance {instance}: {what}")]
    Unsupported {
        instance: String,
        what: &'static str,
    },
    #[error("admin listener {addr}: {source}")]
    Admin {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("instance task failed: {0}")]
    Task(String),
}

/// Runs every `[[ha.instance]]` until `shutdown`; then each MASTER sends a
/// priority-0 advert and every VIP is removed.
pub async fn run(cfg: HaConfig, shutdown: CancellationToken) -> Result<(), HaError> {
    let metrics = status::Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);

    // One pool for every tracking check and webhook of this daemon.
    let http = HttpClient::new("stackd-ha");
    let mut tasks = tokio::task::JoinSet::new();
    let mut statuses = Vec::new();
    for inst in &cfg.instance {
        let built = setup::instance(inst, cfg.email.clone(), metrics.clone(), &http, &shutdown)?;
        statuses.push(built.status.clone());
        let stop = shutdown.child_token();
        tasks.spawn(built.driver.run(built.samples, stop));
    }

    if let Some(addr) = cfg.admin {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| HaError::Admin { addr, source })?;
        let all = statuses.clone();
        let admin = Admin::new(Arc::new(registry)).status(move || status::render(&all));
        tokio::spawn(admin.serve(listener, shutdown.child_token()));
        tracing::info!(%addr, "ha admin listening");
    }

    let mut first_err = None;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            first_err.get_or_insert(HaError::Task(e.to_string()));
        }
    }
    first_err.map_or(Ok(()), Err)
}
