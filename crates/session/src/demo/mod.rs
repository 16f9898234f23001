//! `stackd demo-backend`: the Tomcat + index.jsp of the classic setup, with
//! sessions in Redis. Routes follow SPEC.md "Demo backend HTTP contract",
//! plus `GET /metrics` (Prometheus text) since the demo has no admin port.
//! Every answer carries `X-Stackd-Node`, so a test can see which node served it.
//!
//! [`run`] is what `stackd demo-backend` calls; [`serve`] takes a bound
//! listener and a store, so one process can run several backends on one
//! shared store (tests; `stackd lab` with `memory://`, where the backends
//! must share one `Arc` of the store to share sessions).
//!
//! ```text
//!   accept loop ──(permit from a Semaphore)──> one task per connection (HTTP/1.1)
//!        │                                         │ /echo, /healthz, /metrics: no session
//!   shutdown token                                 │ /, /session, /login, /logout:
//!        └─> stop accepting, GracefulShutdown      │   SessionLayer: load -> handler -> save + cookie,
//!            of open connections (bounded grace)   │   all within redis_timeout, else 503
//! ```
//!
//! Every connection state has a deadline, because the demo listens on the
//! LAN like Tomcat did and a slow client must not hold one of its slots:
//!
//! | state | deadline | who enforces it |
//! |---|---|---|
//! | reading a request head, or idle between requests | `client_header_timeout` | hyper (`header_read_timeout`), closes the connection |
//! | reading a body (`/login`, `/echo`) | `client_body_timeout` between two reads; `client_max_body_size` (`/echo`), 16k (`/login`) | the route, answers 408 / 413 |
//! | session work | `redis_timeout` | the route, answers 503 |
//! | after shutdown | 10 s grace | the accept loop |
//!
//! HTTP/1.1 only: the demo sits behind the proxy, which speaks HTTP/1.1 to
//! it, and HTTP/2's preface detection would be a read without a deadline.

mod http_util;
mod metrics;
mod page;
mod probes;
mod routes;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use stackd_common::config::DemoBackendConfig;
use stackd_common::CancellationToken;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::cookie::CookieSettings;
use crate::layer::SessionLayer;
use crate::redis::{open_store_with, OpenError, StoreOptions};
use crate::store::{SessionStore, Ttl};

/// Connections served at once; the next accept waits for a free slot.
const MAX_CONNECTIONS: usize = 4096;
/// How long open connections get to finish after shutdown.
const GRACE: Duration = Duration::from_secs(10);

/// Why the demo backend could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("session store: {0}")]
    Store(#[from] OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("session TTL {0:?} must be whole seconds, at least 1s")]
    Ttl(Duration),
}

/// Opens the store named by `cfg.redis`, binds `cfg.listen` and serves until `shutdown`.
pub async fn run(cfg: DemoBackendConfig, shutdown: CancellationToken) -> Result<(), DemoError> {
    let store = open_store_with(&cfg.redis, &StoreOptions::from(&cfg))?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| DemoError::Bind {
            addr: cfg.listen,
            source,
        })?;
    stackd_common::systemd::ready("serving");
    // STOPPING=1 is sent here, in the serving task, before `run` can
    // return: from a spawned task it was lost when a quick shutdown ended
    // the runtime first.
    let mut served = std::pin::pin!(serve(listener, store, &cfg, shutdown.clone()));
    tokio::select! {
        biased;
        () = shutdown.cancelled() => {
            stackd_common::systemd::stopping("draining connections");
        }
        r = &mut served => return r,
    }
    served.await
}

/// The routes with their session layer, built from `cfg`.
fn app(
    store: Arc<dyn SessionStore>,
    cfg: &DemoBackendConfig,
) -> Result<Arc<routes::App>, DemoError> {
    let ttl = Ttl::new(cfg.session_ttl).ok_or(DemoError::Ttl(cfg.session_ttl))?;
    let first = Ttl::new(cfg.first_ttl()).ok_or(DemoError::Ttl(cfg.new_session_ttl))?;
    let layer = SessionLayer::new(
        store,
        ttl,
        CookieSettings::from(&cfg.cookie),
        Some(cfg.node_id.clone()),
        cfg.redis_timeout,
    )
    .with_first_ttl(first);
    let app = Arc::new(routes::App {
        layer,
        node: cfg.node_id.clone(),
        metrics: metrics::Metrics::new(&cfg.node_id),
        body: routes::BodyLimits {
            timeout: cfg.client_body_timeout,
            echo_max: cfg.client_max_body_size.bytes(),
        },
    });
    Ok(app)
}

/// Serves the demo app on an already-bound `listener` with `store` (tests and
/// `stackd lab` pass a shared or in-memory store here). `cfg.listen` and
/// `cfg.redis` are not used; everything else is.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn SessionStore>,
    cfg: &DemoBackendConfig,
    shutdown: CancellationToken,
) -> Result<(), DemoError> {
    let app = app(store, cfg)?;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        node = %cfg.node_id,
        store = %app.layer.store().describe(),
        ttl_secs = app.layer.ttl().secs(),
        "demo backend serving"
    );
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.client_header_timeout);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle(req, peer).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {GRACE:?}; closing them");
    }
    Ok(())
}
