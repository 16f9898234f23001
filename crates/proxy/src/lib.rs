//! Reverse proxy and load balancer: the nginx part of stackd.
//!
//! A connection is accepted and driven through its lifecycle in
//! `listen` (a pure state machine, `listen/LIFECYCLE.md`); HTTP/1 is
//! parsed by our own `codec`, HTTP/2 by hyper. Each request is
//! `request::prepare`d (limits, Host, route, head rewrite; pure),
//! `request::forward`ed to an `upstream` server over a pooled
//! connection with its `body` streamed both ways, and finished into
//! `observe` (counters and the access log).
//!
//! # API
//! [`run`] binds the configured listeners and serves; [`run_with`] also
//! takes the process's [`Control`]: inherited sockets (systemd socket
//! activation, a binary upgrade), SIGUSR2 upgrades and the VIPs a drain
//! waits for. [`serve`] takes listeners bound by the caller ([`Bound`]):
//! tests on `127.0.0.1:0`. [`check_tls`] is
//! the certificate loader for `stackd check`. Errors are [`ProxyError`]s.
//!
//! # Layout
//! - `listen`: listeners, connection lifecycle, HTTP/1 and HTTP/2
//!   drivers, TLS, workers, admin pages, reload and shutdown.
//! - `codec`: the HTTP/1.1 codec, pure: heads, framing, chunked coding.
//! - `request`: one request: prepare, rewrite, forward, finish.
//! - `body`: bodies streamed both ways; the body pace (timeout and rate).
//! - `upstream`: servers and their state, the connection pool, balancing,
//!   health and the prober.
//! - `snapshot`: the running config (routes, limits, TLS) behind an `ArcSwap`.
//! - `observe`: counters, histograms, the access log.
//! - `error`: [`ProxyError`] with the failing side and the client status.
//!
//! Modules depend downwards only: `listen` → `request` → `upstream`,
//! `body`, `codec`, `observe`; `snapshot` sits beside `request` and is
//! read by both it and `listen`.

pub(crate) mod body;
pub(crate) mod clock;
pub(crate) mod codec;
pub(crate) mod error;
pub(crate) mod listen;
pub(crate) mod observe;
pub(crate) mod request;
pub(crate) mod snapshot;
pub(crate) mod timer;
pub(crate) mod upstream;
pub(crate) mod worker;

pub use error::{BadResponse, ErrorKind, ProxyError, Side};
pub use listen::{serve, Bound, Control};

/// Loads `[[proxy.tls]]` certificates as the proxy would at start, so that
/// `stackd check` and the proxy agree on what loads.
pub fn check_tls(certs: &[stackd_common::config::proxy::TlsCert]) -> Result<(), ProxyError> {
    snapshot::tls::server_config(certs).map(drop)
}

use listen::handover::Inherited;
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
    run_with(cfg, reloads, Control::new(shutdown)).await
}

/// [`run`] as `control` says: inherited sockets are used instead of
/// binding their addresses; SIGTERM demotes then drains; SIGUSR2 hands
/// every listening socket to a new process (see [`Control`]).
pub async fn run_with(
    cfg: ProxyConfig,
    reloads: mpsc::Receiver<ProxyConfig>,
    mut control: Control,
) -> Result<(), ProxyError> {
    let workers = cfg.worker_count();
    worker::set_count(workers);
    let mut inherited = Inherited::new(std::mem::take(&mut control.inherited));
    let admin = match cfg.admin {
        Some(a) => inherited.take_or_bind(a).await?.into_iter().next(),
        None => None,
    };
    if workers > 0 {
        return listen::workers::serve_workers(cfg, workers, admin, reloads, control, inherited)
            .await;
    }
    let mut listeners = Vec::with_capacity(cfg.listen.len());
    for l in &cfg.listen {
        for listener in inherited.take_or_bind(l.addr()).await? {
            listeners.push(Bound {
                listener,
                tls: l.tls(),
            });
        }
    }
    inherited.close_rest();
    listen::serve_with(listeners, admin, cfg, reloads, control).await
}
