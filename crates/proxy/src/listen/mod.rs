//! Listeners, client connections, reload and graceful shutdown.
//!
//! ```text
//!   serve ──┬─ accept loop per listener ── connection task per client (TaskTracker)
//!           │     (Semaphore permit before accept: max_connections; tunnels keep theirs)
//!           │        └─ conn: first bytes ─► h1::serve (our codec) | h2::serve (hyper)
//!           │                 each driven by a pure Lifecycle (lifecycle.rs, LIFECYCLE.md)
//!           │     lot per plain accept loop: connections idle 250 ms leave their
//!           │        tasks; the next byte brings them back in a new one    [lot.rs]
//!           ├─ admin server (/healthz /status /metrics)       [admin.rs]
//!           ├─ prober per upstream with [health]             (restarted on reload)
//!           └─ select! { reloads => swap snapshot, shutdown => stop }
//! ```
//!
//! Stopping ([`Phase`], `handover.rs`): first `Draining` (`/healthz` 503
//! "draining" while still accepting, until the VIP has left the host or
//! `drain_delay`), or a hand-over of every listening socket to a new
//! binary; then the accept loops stop, every connection gets `Drain` (idle
//! ones close, in-flight requests finish and close, HTTP/2 says GOAWAY),
//! and at the end of `shutdown_grace` whatever is left, tunnels included,
//! is closed.
//!
//! Listeners come from the caller ([`serve`] takes them bound), or are
//! inherited (systemd socket activation, a binary upgrade: [`Control`]).

pub(crate) mod admin;
mod conn;
mod h1;
mod h2;
pub(crate) mod handover;
mod io;
pub(crate) mod lifecycle;
mod lot;
mod quiet;
mod server;
pub(crate) mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use stackd_common::CancellationToken;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::body::BodyLimits;
use crate::error::{ErrorKind, ProxyError};
use crate::snapshot::{Limits, Snapshot};
pub use handover::Control;
use lifecycle::{Timeouts, Timer};
pub use server::serve;
pub(crate) use server::serve_with;
pub(crate) use server::{Observed, Phase};

/// A client listener bound by the caller.
#[derive(Debug)]
pub struct Bound {
    pub listener: TcpListener,
    /// Terminate TLS on it (certificates from `[[proxy.tls]]`).
    pub tls: bool,
}

/// Binds an address with a clear error.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| ProxyError::proxy(ErrorKind::Bind { addr, error }))
}

/// What every connection of one worker shares.
pub(crate) struct Ctx {
    pub(crate) shared: Arc<ArcSwap<Snapshot>>,
    pub(crate) sem: Arc<Semaphore>,
    pub(crate) tracker: TaskTracker,
    /// Cancelled when the server stops: connections finish their request and close.
    pub(crate) drain: CancellationToken,
    /// Cancelled at the end of `shutdown_grace`: every connection closes now.
    pub(crate) kill: CancellationToken,
    pub(crate) observed: Arc<Observed>,
}

impl Ctx {
    /// Whether the server is on its way out (an atomic load; the `drain`
    /// token is for waiting on it): every response closes its connection,
    /// so clients reconnect and follow the VIP to the peer.
    pub(crate) fn draining(&self) -> bool {
        self.observed.phase() != Phase::Serving
    }

    pub(crate) fn count_timeout(&self, t: Timer) {
        self.observed.timeouts.count(t.index());
    }
}

/// How long a connection idles before it parks: `normal`, or an hour in
/// builds with `--cfg stackd_no_park` (`bench/instructions.sh --cache`:
/// under valgrind each of a thousand connections sends a request a second
/// and would park between them, which a real thousand do not).
pub(crate) const fn idle_delay(normal: Duration) -> Duration {
    if cfg!(stackd_no_park) {
        Duration::from_secs(3600)
    } else {
        normal
    }
}

/// A connection's timeouts, from the running config.
pub(crate) fn timeouts(l: &Limits) -> Timeouts {
    Timeouts {
        header: l.header_timeout,
        body: BodyLimits {
            idle: l.body_timeout,
            min_rate: l.body_min_rate,
        },
        send: l.client_send_timeout,
        keepalive: l.keepalive_timeout,
        tunnel: l.read_timeout,
        linger: l.lingering_time,
        linger_idle: l.lingering_timeout,
    }
}
