//! VRRP virtual-IP failover: the keepalived part of stackd.
//!
//! Interoperates on the wire with keepalived (VRRPv2 with PASS auth, VRRPv3),
//! so a cluster can replace one keepalived node at a time. [`run`] takes the
//! typed [`HaSpec`] built when the config was loaded; nothing here parses or
//! re-checks configuration.
//!
//! ```text
//! run ─┬─ admin server (/healthz /status /metrics)
//!      └─ per instance: Driver::run ◄── probe tasks (one per track entry)
//!                         ├─► announcer task (GARP bursts, off the loop)
//!                         └─► notifier task (coalesced notify/webhook/mail)
//! ```

// --- Pure cores: no sockets, no clock. Public: they are the protocol, and
// the golden, transition, election and fuzz tests drive them directly.
/// Internet checksum and the v3 pseudo-header.
pub mod checksum;
/// Which transitions become notifications, and when.
pub mod coalesce;
/// Gratuitous ARP / unsolicited NA frames (and, crate-private, their sending).
pub mod garp;
/// VRRPv2/v3 encode and decode.
pub mod packet;
/// The RFC 5798 §6 state machine: events in, actions out.
pub mod state;
/// RFC receive checks; every reject has a metric label.
pub mod validate;

// --- The loop and its seams. Public so the loop runs against in-memory
// ports in tests/driver.rs.
/// One async loop per instance, executing actions via [`ports`].
pub mod driver;
/// The notify script, webhook and mail, fed by the driver.
pub mod notify;
/// What the driver needs from the network.
pub mod ports;
/// Datagrams as the raw sockets deliver them.
pub mod socket;
/// `/status` JSON and `/metrics`.
pub mod status;

// --- Pure, used only here.
/// The IPv4 header in front of a received advert.
mod ip;
/// Skew_Time and Master_Down_Interval.
mod timers;
/// Fall/rise hysteresis and effective priority.
mod track;

// --- Linux edges, private.
mod child;
mod iface;
mod netlink;
mod probe;
mod setup;
mod socket6;

use std::sync::Arc;

use prometheus_client::registry::Registry;
use stackd_common::admin::Admin;
pub use stackd_common::config::ha::HaSpec;
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
    #[error("admin listener {addr}: {source}")]
    Admin {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("instance task failed: {0}")]
    Task(String),
}

/// Runs every instance of `spec` until `shutdown`; then each MASTER sends a
/// priority-0 advert, every VIP is removed and each STOP notification is
/// delivered before this returns.
pub async fn run(spec: HaSpec, shutdown: CancellationToken) -> Result<(), HaError> {
    let metrics = status::Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);

    // One pool for every tracking check and webhook of this daemon.
    let http = HttpClient::new("stackd-ha");
    let mut tasks = tokio::task::JoinSet::new();
    let mut statuses = Vec::new();
    for inst in &spec.instances {
        let built = setup::instance(inst, spec.email.clone(), metrics.clone(), &http, &shutdown)?;
        statuses.push(built.driver.status());
        let stop = shutdown.child_token();
        tasks.spawn(built.driver.run(built.samples, stop));
    }

    if let Some(addr) = spec.admin {
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
