//! Reverse proxy and load balancer: the nginx part of stackd.
//!
//! A request flows: [`server`] accepts (TLS by SNI in [`tls`], timeouts in
//! [`conn`]) → [`service`] checks limits, routes ([`route`]), rewrites the
//! head ([`forward`]), picks a server ([`upstream`] with [`balance`] and
//! [`health`]) and sends it over a pooled connection ([`pool`]) with
//! retries → the response streams back ([`body`]) and its end records
//! metrics and the access log ([`access`], [`stats`]).
//!
//! # Layout
//! - [`balance`]: pure load-balancing policies over a server tier.
//! - [`health`]: pure passive and active health hysteresis; [`prober`] feeds it.
//! - [`route`]: virtual hosts and longest path prefix.
//! - [`forward`]: pure header rewriting (hop-by-hop, X-Forwarded-*, Forwarded, Location).
//! - [`snapshot`]: the immutable running config behind an `ArcSwap`.
//! - [`upstream`], [`pool`]: live server state and idle upstream connections.
//! - [`service`], [`body`]: the request path and streaming bodies.
//! - [`server`], [`conn`], [`tls`]: listeners, connection timeouts, TLS.
//! - [`workers`], [`worker`]: optional thread-per-core mode (`workers = N`).
//! - [`status`], [`stats`], [`access`]: `/status`, `/metrics`, access log.
//! - [`error`]: [`ProxyError`] with the failing side and the client status.

pub mod access;
pub mod balance;
pub mod body;
pub mod clock;
pub mod conn;
pub mod error;
pub mod forward;
pub mod health;
pub mod pool;
pub mod prober;
pub mod route;
pub mod server;
pub mod service;
pub mod snapshot;
pub mod stats;
pub mod status;
pub mod tls;
pub mod upstream;
pub mod worker;
pub mod workers;

pub use error::{ErrorKind, ProxyError, Side};
pub use server::{bind, serve, Bound};

use stackd_common::config::ProxyConfig;
use stackd_common::CancellationToken;
use tokio::sync::mpsc;

/// Serves `cfg` until `shutdown`; each config from `reloads` replaces the running one.
///
/// Binds every `listen` address and the `admin` address first, so a port in
/// use is an error before anything is served.
pub async fn run(
    cfg: ProxyConfig,
    reloads: mpsc::Receiver<ProxyConfig>,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    crate::worker::set_count(cfg.workers);
    if cfg.workers > 0 {
        let admin = match cfg.admin {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        return workers::serve_workers(cfg, admin, reloads, shutdown).await;
    }
    let mut listeners = Vec::with_capacity(cfg.listen.len());
    for l in &cfg.listen {
        listeners.push(Bound {
            listener: bind(l.addr()).await?,
            tls: l.tls(),
        });
    }
    let admin = match cfg.admin {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    serve(listeners, admin, cfg, reloads, shutdown).await
}
