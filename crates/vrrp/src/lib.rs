//! VRRP virtual-IP failover: the keepalived part of stackd.
//!
//! Interoperates on the wire with keepalived (VRRPv2 with PASS auth, VRRPv3),
//! so a cluster can replace one keepalived node at a time. [`run`] takes the
//! typed [`HaSpec`] built when the config was loaded; nothing here parses or
//! re-checks configuration.
//!
//! ```text
//! run ─┬─ admin server (/healthz /status /metrics)
//!      ├─ SIGHUP reloads, SIGUSR1 dumps, systemd watchdog   (daemon.rs)
//!      └─ per instance: Driver::run ◄── probe tasks (one per track entry)
//!                         ├─► announcer task (GARP bursts, off the loop)
//!                         └─► notifier task (coalesced notify/webhook/mail)
//! ```

// --- Pure cores: no sockets, no clock. Public: they are the protocol, and
// the golden, transition, election and fuzz tests drive them directly.
// Internet checksum and the v3 pseudo-header.
pub mod checksum;
// Which transitions become notifications, and when.
pub mod coalesce;
// Gratuitous ARP / unsolicited NA frames (and, crate-private, their sending).
pub mod garp;
// VRRPv2/v3 encode and decode.
pub mod packet;
// The RFC 5798 §6 state machine: events in, actions out.
pub mod state;
// Fall/rise hysteresis, "draining", and effective priority.
pub mod track;
// RFC receive checks; every reject has a metric label.
pub mod validate;

// --- The loop and its seams. Public so the loop runs against in-memory
// ports in tests/driver.rs.
// One async loop per instance, executing actions via [`ports`].
pub mod driver;
// The notify script, webhook and mail, fed by the driver.
pub mod notify;
// What the driver needs from the network.
pub mod ports;
// Datagrams as the raw sockets deliver them.
pub mod socket;
// `/status` JSON and `/metrics`.
pub mod status;

// --- Pure, used only here.
// The IPv4 header in front of a received advert.
mod ip;
// Skew_Time and Master_Down_Interval.
mod timers;

// --- Linux edges, private.
mod child;
// Instances started, reloaded, dumped and watched (systemd watchdog).
mod daemon;
mod iface;
mod netlink;
mod probe;
mod setup;
mod socket6;

pub use daemon::Inputs;
pub use stackd_common::config::ha::HaSpec;
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
    let (_reload_tx, reloads) = tokio::sync::mpsc::channel(1);
    let (_dump_tx, dumps) = tokio::sync::mpsc::channel(1);
    run_with(
        spec,
        Inputs {
            shutdown,
            reloads,
            dumps,
        },
    )
    .await
}

/// [`run`] with SIGHUP reloads and SIGUSR1 dumps ([`Inputs`]).
pub async fn run_with(spec: HaSpec, inputs: Inputs) -> Result<(), HaError> {
    daemon::run_with(spec, inputs).await
}
