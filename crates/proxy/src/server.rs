//! Listeners, connections, reload and graceful shutdown.
//!
//! ```text
//!   run/serve ──┬─ accept loop per listener ── conn task per client (TaskTracker)
//!               │      (Semaphore permit before accept: max_connections)
//!               ├─ admin server (/healthz /status /metrics)
//!               ├─ prober per upstream with [health]   (restarted on reload)
//!               └─ select! { reloads => swap snapshot, shutdown => drain }
//! ```
//!
//! On shutdown: accept loops stop, every connection gets hyper's graceful
//! shutdown (finish in-flight requests, then close), and we wait at most
//! `shutdown_grace` for them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use stackd_common::config::ProxyConfig;
use stackd_common::CancellationToken;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::conn::{ConnInfo, ConnIo, ParkSlot, PARK_AFTER};
use crate::error::{ErrorKind, ProxyError};
use crate::snapshot::Snapshot;

/// A client listener bound by the caller (tests bind 127.0.0.1:0).
#[derive(Debug)]
pub struct Bound {
    pub listener: TcpListener,
    pub tls: bool,
}

/// Binds an address with a clear error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::proxy(ErrorKind::Bind { addr, source }))
}

pub(crate) struct Ctx {
    pub(crate) shared: Arc<ArcSwap<Snapshot>>,
    pub(crate) sem: Arc<Semaphore>,
    pub(crate) tracker: TaskTracker,
    /// Cancelled at shutdown: connections finish their request and close.
    pub(crate) drain: CancellationToken,
}

/// Serves on already-bound listeners until `shutdown`, applying each config
/// from `reloads` to new requests.
pub async fn serve(
    listeners: Vec<Bound>,
    admin: Option<TcpListener>,
    cfg: ProxyConfig,
    mut reloads: mpsc::Receiver<ProxyConfig>,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    let max_connections = cfg.max_connections.max(1);
    let snap = Snapshot::build(cfg, None)?;
    let shared = Arc::new(ArcSwap::from_pointee(snap));
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        sem: Arc::new(Semaphore::new(max_connections)),
        tracker: TaskTracker::new(),
        drain: CancellationToken::new(),
    });
    if let Some(l) = admin {
        let admin = crate::status::admin(shared.clone());
        tokio::spawn(admin.serve(l, shutdown.child_token()));
    }
    let mut prober = crate::prober::spawn(&shared.load(), shutdown.child_token());

    let mut loops: HashMap<SocketAddr, (CancellationToken, bool)> = HashMap::new();
    for b in listeners {
        let addr = b.listener.local_addr().map_err(|source| {
            ProxyError::proxy(ErrorKind::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
        })?;
        let stop = shutdown.child_token();
        loops.insert(addr, (stop.clone(), b.tls));
        tokio::spawn(accept_loop(b.listener, b.tls, ctx.clone(), stop));
        tracing::info!(%addr, tls = b.tls, "proxy listening");
    }

    let mut reloads_open = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            next = reloads.recv(), if reloads_open => match next {
                None => reloads_open = false,
                Some(cfg) => {
                    if let Some(p) = reload(&ctx, &shutdown, &mut loops, cfg).await {
                        prober.cancel();
                        prober = p;
                    }
                }
            },
        }
    }

    // Drain: stop accepting, let in-flight requests finish within the grace period.
    let grace = ctx.shared.load().cfg.shutdown_grace;
    loops.values().for_each(|(t, _)| t.cancel());
    prober.cancel();
    ctx.drain.cancel();
    ctx.tracker.close();
    let open = ctx.tracker.len();
    if tokio::time::timeout(grace, ctx.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = ctx.tracker.len(),
            ?grace,
            "shutdown grace over; closing the rest"
        );
    } else {
        tracing::info!(connections = open, "drained");
    }
    Ok(())
}

/// Applies a new config; returns the new prober token when it took effect.
async fn reload(
    ctx: &Arc<Ctx>,
    shutdown: &CancellationToken,
    loops: &mut HashMap<SocketAddr, (CancellationToken, bool)>,
    cfg: ProxyConfig,
) -> Option<CancellationToken> {
    let next = swap_snapshot(&ctx.shared, cfg)?;
    let wanted: HashMap<SocketAddr, bool> = next
        .cfg
        .listen
        .iter()
        .map(|l| (l.addr(), l.tls()))
        .collect();
    for (addr, (stop, tls)) in loops.iter() {
        if wanted.get(addr) != Some(tls) {
            stop.cancel();
            tracing::info!(%addr, "listener closed by reload");
        }
    }
    loops.retain(|addr, (_, tls)| wanted.get(addr) == Some(tls));
    for (addr, tls) in wanted {
        if loops.contains_key(&addr) {
            continue;
        }
        match bind(addr).await {
            Ok(l) => {
                let stop = shutdown.child_token();
                loops.insert(addr, (stop.clone(), tls));
                tokio::spawn(accept_loop(l, tls, ctx.clone(), stop));
                tracing::info!(%addr, tls, "listener opened by reload");
            }
            Err(e) => tracing::error!(error = %e, "reload: cannot open listener"),
        }
    }
    Some(crate::prober::spawn(&next, shutdown.child_token()))
}

/// Builds and installs the snapshot for a reloaded config; `None` (logged) when it fails.
pub(crate) fn swap_snapshot(shared: &ArcSwap<Snapshot>, cfg: ProxyConfig) -> Option<Arc<Snapshot>> {
    let old = shared.load_full();
    let next = match Snapshot::build(cfg, Some(&old)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "reload rejected, keeping the running config");
            return None;
        }
    };
    if next.cfg.admin != old.cfg.admin
        || next.cfg.max_connections != old.cfg.max_connections
        || next.cfg.workers != old.cfg.workers
    {
        tracing::warn!("admin, max_connections and workers changes take effect after a restart");
    }
    old.release_removed(&next);
    shared.store(next.clone());
    tracing::info!(
        upstreams = next.upstreams.len(),
        routes = next.cfg.route.len(),
        "config reloaded"
    );
    Some(next)
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: bool,
    ctx: Arc<Ctx>,
    stop: CancellationToken,
) {
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = ctx.sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        ctx.tracker
            .spawn(first_byte(stream, peer, tls, ctx.clone(), permit));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Auto,
    H1,
    H2,
}

/// Waits for a new connection's first byte in a task of a few hundred bytes;
/// only then is the (much larger) connection state allocated. 10,000 idle
/// connections then cost megabytes, not tens of megabytes. A connection that
/// stays silent for `client_header_timeout` is closed without a word.
///
/// A plain HTTP/1 connection comes back here each time it idles between
/// requests (see `conn` on parking): hyper's buffers and state are freed, and
/// the next request's first byte starts a fresh hyper connection. It is
/// closed when silent for `keepalive_timeout`.
async fn first_byte(
    stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    ctx: Arc<Ctx>,
    permit: OwnedSemaphorePermit,
) {
    let mut stream = stream;
    let mut wait = ctx.shared.load().limits.header_timeout;
    let mut fresh = true;
    loop {
        let mut probe = [0u8; 1];
        // `peek` really waits for data; `readable()` may report a fresh socket ready at once.
        let first = tokio::select! {
            r = tokio::time::timeout(wait, stream.peek(&mut probe)) => match r {
                Ok(Ok(n)) if n > 0 => probe[0],
                _ => return,
            },
            _ = ctx.drain.cancelled() => return,
        };
        if tls {
            return Box::pin(serve_tls(stream, peer, ctx, permit)).await;
        }
        // Every HTTP/2 prior-knowledge connection starts with "PRI"; later
        // requests on a parked connection are HTTP/1 by then.
        let proto = if fresh && first == b'P' {
            Proto::Auto
        } else {
            Proto::H1
        };
        let slot: ParkSlot<TcpStream> = Arc::new(Mutex::new(None));
        Box::pin(serve_plain(stream, peer, proto, &ctx, slot.clone())).await;
        let parked = slot.lock().ok().and_then(|mut s| s.take());
        let Some(s) = parked else { return };
        stream = s;
        fresh = false;
        // It idled PARK_AFTER in hyper before parking.
        wait = ctx
            .shared
            .load()
            .limits
            .keepalive_timeout
            .saturating_sub(PARK_AFTER);
    }
}

async fn serve_plain(
    stream: TcpStream,
    peer: SocketAddr,
    proto: Proto,
    ctx: &Ctx,
    slot: ParkSlot<TcpStream>,
) {
    let snap = ctx.shared.load_full();
    let limits = snap.limits;
    let info = Arc::new(ConnInfo::new(peer, false));
    let io = ConnIo::new(
        stream,
        info.clone(),
        limits.header_timeout,
        limits.keepalive_timeout,
        false,
    )
    .park_in(slot);
    serve_io(io, info, proto, ctx, &snap).await
}

async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    _permit: OwnedSemaphorePermit,
) {
    let snap = ctx.shared.load_full();
    let limits = snap.limits;
    let info = Arc::new(ConnInfo::new(peer, true));
    let Some(cfg) = snap.tls.clone() else {
        return;
    };
    let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(stream);
    let s = match tokio::time::timeout(limits.header_timeout, accept).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
    let proto = if h2 { Proto::H2 } else { Proto::H1 };
    let io = ConnIo::new(
        s,
        info.clone(),
        limits.header_timeout,
        limits.keepalive_timeout,
        h2,
    );
    serve_io(io, info, proto, &ctx, &snap).await
}

async fn serve_io<I>(io: I, info: Arc<ConnInfo>, proto: Proto, ctx: &Ctx, snap: &Snapshot)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .header_read_timeout(None)
        .max_buf_size(snap.limits.max_header.max(8192));
    builder
        .http2()
        .max_header_list_size(u32::try_from(snap.limits.max_header).unwrap_or(u32::MAX));
    let builder = match proto {
        Proto::Auto => builder,
        Proto::H1 => builder.http1_only(),
        Proto::H2 => builder.http2_only(),
    };
    let shared = ctx.shared.clone();
    let svc = service_fn(move |req| crate::service::handle(shared.clone(), info.clone(), req));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = ctx.drain.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}

// Keeps `Infallible` referenced for readers: the service never fails, errors are responses.
const _: Option<Infallible> = None;
