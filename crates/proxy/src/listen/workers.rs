//! nginx's worker model on request: `workers = N` threads, each with a
//! single-threaded runtime, its own `SO_REUSEPORT` socket per listen address
//! (the kernel spreads new connections) and its own idle upstream
//! connections ([`crate::worker`]). A request is handled start to finish on
//! one thread, with no cross-thread wake-ups.
//!
//! ```text
//!   caller's runtime: reloads, shutdown, admin, probers ── ArcSwap<Snapshot> ──┐
//!   worker 0: runtime ─ accept loops ─ connections ─ upstream conns            │ shared,
//!   worker 1: runtime ─ accept loops ─ connections ─ upstream conns   ◄────────┘ read-only
//! ```
//!
//! Listener changes on reload need a restart in this mode (everything else
//! reloads as usual). Inherited sockets (socket activation, an upgrade)
//! are served by every worker instead of binding `SO_REUSEPORT` ones: one
//! socket per address, each worker accepting on it, as nginx without
//! `reuseport`. All of them go to the next process on an upgrade.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stackd_common::config::ProxyConfig;
use stackd_common::CancellationToken;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, oneshot};

use super::handover::{Control, Inherited, Sockets};
use super::server::{accept_loop, Server};
use super::Ctx;
use crate::error::{ErrorKind, ProxyError};

/// A listener socket other workers can bind too (`SO_REUSEPORT`).
fn reuseport_listener(addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    let bind_err = |error| ProxyError::proxy(ErrorKind::Bind { addr, error });
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_err)?;
    sock.set_reuseaddr(true).map_err(bind_err)?;
    sock.set_reuseport(true).map_err(bind_err)?;
    sock.bind(addr).map_err(bind_err)?;
    sock.listen(1024).map_err(bind_err)
}

fn thread_err(error: std::io::Error) -> ProxyError {
    ProxyError::proxy(ErrorKind::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        error,
    })
}

/// Runs `n` worker threads until `shutdown`; see the module docs.
pub(crate) async fn serve_workers(
    cfg: ProxyConfig,
    n: usize,
    admin: Option<TcpListener>,
    mut reloads: mpsc::Receiver<ProxyConfig>,
    mut control: Control,
    mut inherited: Inherited,
) -> Result<(), ProxyError> {
    let n = n.max(1);
    let listen: Vec<(SocketAddr, bool)> = cfg.listen.iter().map(|l| (l.addr(), l.tls())).collect();
    let given: Vec<(SocketAddr, Vec<std::net::TcpListener>)> = listen
        .iter()
        .map(|(a, _)| (*a, inherited.take(*a)))
        .collect();
    inherited.close_rest();
    let mut server = Server::start(cfg, admin)?;
    for (addr, socks) in &given {
        socks.iter().for_each(|l| server.sockets.add(*addr, l));
    }
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), ProxyError>>();
    let mut ctxs = Vec::with_capacity(n);
    let mut done = Vec::with_capacity(n);
    for i in 0..n {
        let (done_tx, done_rx) = oneshot::channel::<()>();
        done.push(done_rx);
        let ctx = server.ctx();
        ctxs.push(ctx.clone());
        let socks = clones(&listen, &given).map_err(thread_err)?;
        let sockets = server.sockets.clone();
        let (worker_stop, ready) = (stop.clone(), ready_tx.clone());
        let observed = ctx.observed.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("stackd-proxy-{i}"))
            .spawn(move || {
                crate::worker::set_id(i);
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_park(move || crate::worker::turn_ends(&observed.cpu_ns))
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(thread_err(e)));
                        return;
                    }
                };
                rt.block_on(worker(socks, sockets, ctx, worker_stop, ready));
                drop(done_tx);
            });
        if let Err(e) = spawned {
            stop.cancel();
            return Err(thread_err(e));
        }
    }
    drop(ready_tx);
    for _ in 0..n {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                stop.cancel();
                return Err(e);
            }
            None => break,
        }
    }
    for (addr, tls) in &listen {
        tracing::info!(%addr, tls, workers = n, "proxy listening");
    }
    server.announce_ready(control.ready.take());

    let ending = loop {
        match server.next_reload(&mut reloads, &mut control).await {
            Ok(next) => {
                let now: Vec<(SocketAddr, bool)> = next
                    .cfg
                    .listen
                    .iter()
                    .map(|l| (l.addr(), l.tls()))
                    .collect();
                if now != listen {
                    tracing::warn!("listen changes take effect after a restart when workers > 0");
                }
            }
            Err(e) => break e,
        }
    };
    let trackers: Vec<_> = ctxs.iter().map(|c| c.tracker.clone()).collect();
    server
        .leave(ending, &control, || stop.cancel(), &trackers)
        .await;
    let all = futures::future::join_all(done);
    if tokio::time::timeout(Duration::from_secs(2), all)
        .await
        .is_err()
    {
        tracing::warn!("workers did not finish after the shutdown grace");
    }
    Ok(())
}

/// One worker's share of the listeners: (address, tls, inherited sockets
/// to accept on; none: bind an `SO_REUSEPORT` one).
type WorkerListen = Vec<(SocketAddr, bool, Vec<std::net::TcpListener>)>;

/// Each worker's own handles on the inherited sockets.
fn clones(
    listen: &[(SocketAddr, bool)],
    given: &[(SocketAddr, Vec<std::net::TcpListener>)],
) -> std::io::Result<WorkerListen> {
    listen
        .iter()
        .zip(given)
        .map(|((addr, tls), (_, socks))| {
            let mine = socks
                .iter()
                .map(|l| l.try_clone())
                .collect::<Result<_, _>>()?;
            Ok((*addr, *tls, mine))
        })
        .collect()
}

/// One worker thread's life: bind, accept until `stop`, then wait for its
/// connections (the server's stop sequence drains and, at the end of the
/// grace period, closes them).
async fn worker(
    listen: WorkerListen,
    sockets: Sockets,
    ctx: Arc<Ctx>,
    stop: CancellationToken,
    ready: mpsc::UnboundedSender<Result<(), ProxyError>>,
) {
    let mut bound = Vec::with_capacity(listen.len());
    for (addr, tls, inherited) in listen {
        if inherited.is_empty() {
            match reuseport_listener(addr) {
                Ok(l) => {
                    sockets.add(addr, &l);
                    bound.push((l, tls));
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
        }
        for l in inherited {
            match TcpListener::from_std(l) {
                Ok(l) => bound.push((l, tls)),
                Err(error) => {
                    let _ = ready.send(Err(ProxyError::proxy(ErrorKind::Bind { addr, error })));
                    return;
                }
            }
        }
    }
    let _ = ready.send(Ok(()));
    for (l, tls) in bound {
        ctx.tracker
            .spawn(accept_loop(l, tls, ctx.clone(), stop.clone()));
    }
    stop.cancelled().await;
    ctx.tracker.close();
    tokio::select! {
        _ = ctx.tracker.wait() => {}
        _ = ctx.kill.cancelled() => {
            let _ = tokio::time::timeout(Duration::from_secs(1), ctx.tracker.wait()).await;
        }
    }
}
