//! The serving loop both modes share: the running snapshot, the admin
//! pages, the probers, config reloads, and the stop sequence.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use stackd_common::config::ProxyConfig;
use stackd_common::CancellationToken;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;

use super::{bind, conn, Bound, Ctx};
use crate::error::{ErrorKind, ProxyError};
use crate::observe::stats::{Reloads, Timeouts};
use crate::snapshot::Snapshot;
use crate::upstream::{pool, prober};

/// Where the server is in its life, as `/healthz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Accepting and serving.
    Serving,
    /// Not accepting; in-flight requests finish within `shutdown_grace`.
    Stopping,
}

/// Server-wide numbers the admin pages read.
#[derive(Debug)]
pub(crate) struct Observed {
    pub(crate) timeouts: Timeouts,
    pub(crate) reloads: Reloads,
    phase: AtomicU8,
    sem: Arc<Semaphore>,
    max_connections: usize,
}

impl Observed {
    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Serving,
            _ => Phase::Stopping,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    /// Client connections open now (tunnels included).
    pub(crate) fn connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.sem.available_permits())
    }
}

/// What both serving modes share.
pub(crate) struct Server {
    pub(crate) shared: Arc<ArcSwap<Snapshot>>,
    pub(crate) observed: Arc<Observed>,
    pub(crate) sem: Arc<Semaphore>,
    pub(crate) drain: CancellationToken,
    pub(crate) kill: CancellationToken,
    prober: CancellationToken,
    admin_stop: CancellationToken,
}

// === impl Server ===

impl Server {
    /// Builds the first snapshot, starts the admin server and the probers.
    pub(crate) fn start(
        cfg: ProxyConfig,
        admin: Option<TcpListener>,
    ) -> Result<Server, ProxyError> {
        let max = cfg.max_connections.max(1);
        let sem = Arc::new(Semaphore::new(max));
        let shared = Arc::new(ArcSwap::from_pointee(Snapshot::build(cfg, None)?));
        let observed = Arc::new(Observed {
            timeouts: Timeouts::default(),
            reloads: Reloads::default(),
            phase: AtomicU8::new(Phase::Serving as u8),
            sem: sem.clone(),
            max_connections: max,
        });
        observed.reloads.record(true, crate::clock::unix_ms());
        let admin_stop = CancellationToken::new();
        if let Some(l) = admin {
            let a = super::admin::admin(shared.clone(), observed.clone());
            tokio::spawn(a.serve(l, admin_stop.clone()));
        }
        let prober = prober::spawn(&shared.load().upstreams, CancellationToken::new());
        tokio::spawn(pool::reap(Arc::downgrade(&shared)));
        Ok(Server {
            shared,
            observed,
            sem,
            drain: CancellationToken::new(),
            kill: CancellationToken::new(),
            prober,
            admin_stop,
        })
    }

    /// A worker's context: its own task tracker, everything else shared.
    pub(crate) fn ctx(&self) -> Arc<Ctx> {
        Arc::new(Ctx {
            shared: self.shared.clone(),
            sem: self.sem.clone(),
            tracker: TaskTracker::new(),
            drain: self.drain.clone(),
            kill: self.kill.clone(),
            observed: self.observed.clone(),
        })
    }

    /// Applies a new config to new requests; `None` (logged, counted) when it fails.
    pub(crate) fn reload(&mut self, cfg: ProxyConfig) -> Option<Arc<Snapshot>> {
        let old = self.shared.load_full();
        let next = match Snapshot::build(cfg, Some(&old)) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.observed.reloads.record(false, crate::clock::unix_ms());
                tracing::error!(error = %e, "reload rejected, keeping the running config");
                return None;
            }
        };
        if next.cfg.admin != old.cfg.admin
            || next.cfg.max_connections != old.cfg.max_connections
            || next.cfg.workers != old.cfg.workers
        {
            tracing::warn!(
                "admin, max_connections and workers changes take effect after a restart"
            );
        }
        old.release_removed(&next);
        self.shared.store(next.clone());
        self.prober.cancel();
        self.prober = prober::spawn(&next.upstreams, CancellationToken::new());
        self.observed.reloads.record(true, crate::clock::unix_ms());
        tracing::info!(
            upstreams = next.upstreams.len(),
            routes = next.cfg.route.len(),
            "config reloaded"
        );
        Some(next)
    }

    /// Applies configs from `reloads` until one takes effect (returned) or
    /// `shutdown` (`None`). A closed channel just means no more reloads.
    pub(crate) async fn next_reload(
        &mut self,
        reloads: &mut mpsc::Receiver<ProxyConfig>,
        shutdown: &CancellationToken,
    ) -> Option<Arc<Snapshot>> {
        loop {
            let cfg = tokio::select! {
                _ = shutdown.cancelled() => return None,
                next = reloads.recv() => next,
            };
            match cfg {
                None => {
                    shutdown.cancelled().await;
                    return None;
                }
                Some(cfg) => {
                    if let Some(next) = self.reload(cfg) {
                        return Some(next);
                    }
                }
            }
        }
    }

    /// Stops: `/healthz` says so, connections drain within `shutdown_grace`,
    /// then whatever is left is closed. Accept loops must be stopped first.
    pub(crate) async fn stop(self, trackers: &[TaskTracker]) {
        let grace = self.shared.load().cfg.shutdown_grace;
        self.observed.set_phase(Phase::Stopping);
        self.prober.cancel();
        self.drain.cancel();
        for t in trackers {
            t.close();
        }
        let open: usize = trackers.iter().map(TaskTracker::len).sum();
        let all = futures::future::join_all(trackers.iter().map(TaskTracker::wait));
        if tokio::time::timeout(grace, all).await.is_ok() {
            tracing::info!(connections = open, "drained");
        } else {
            let left: usize = trackers.iter().map(TaskTracker::len).sum();
            tracing::warn!(
                connections = left,
                ?grace,
                "shutdown grace over; closing the rest"
            );
            self.kill.cancel();
            let all = futures::future::join_all(trackers.iter().map(TaskTracker::wait));
            let _ = tokio::time::timeout(Duration::from_secs(1), all).await;
        }
        self.admin_stop.cancel();
    }
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
    let mut server = Server::start(cfg, admin)?;
    let ctx = server.ctx();
    let mut loops: HashMap<SocketAddr, (CancellationToken, bool)> = HashMap::new();
    for b in listeners {
        let addr = b.listener.local_addr().map_err(|error| {
            ProxyError::proxy(ErrorKind::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                error,
            })
        })?;
        loops.insert(addr, (start_loop(b.listener, b.tls, &ctx), b.tls));
        tracing::info!(%addr, tls = b.tls, "proxy listening");
    }
    while let Some(next) = server.next_reload(&mut reloads, &shutdown).await {
        relisten(&ctx, &mut loops, &next).await;
    }
    loops.values().for_each(|(t, _)| t.cancel());
    server.stop(std::slice::from_ref(&ctx.tracker)).await;
    Ok(())
}

fn start_loop(l: TcpListener, tls: bool, ctx: &Arc<Ctx>) -> CancellationToken {
    let stop = CancellationToken::new();
    tokio::spawn(accept_loop(l, tls, ctx.clone(), stop.clone()));
    stop
}

/// Opens and closes listeners to match a reloaded config.
async fn relisten(
    ctx: &Arc<Ctx>,
    loops: &mut HashMap<SocketAddr, (CancellationToken, bool)>,
    next: &Snapshot,
) {
    let wanted: HashMap<SocketAddr, bool> = next
        .cfg
        .listen
        .iter()
        .map(|l| (l.addr(), l.tls()))
        .collect();
    loops.retain(|addr, (stop, tls)| {
        let keep = wanted.get(addr) == Some(tls);
        if !keep {
            stop.cancel();
            tracing::info!(%addr, "listener closed by reload");
        }
        keep
    });
    for (addr, tls) in wanted {
        if loops.contains_key(&addr) {
            continue;
        }
        match bind(addr).await {
            Ok(l) => {
                loops.insert(addr, (start_loop(l, tls, ctx), tls));
                tracing::info!(%addr, tls, "listener opened by reload");
            }
            Err(e) => tracing::error!(error = %e, "reload: cannot open listener"),
        }
    }
}

/// Takes a `max_connections` permit, then accepts; each connection keeps
/// its permit (and its place in the tracker) until it closes.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: bool,
    ctx: Arc<Ctx>,
    stop: CancellationToken,
) {
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            _ = ctx.drain.cancelled() => return,
            p = ctx.sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            _ = ctx.drain.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        ctx.tracker
            .spawn(conn::connection(stream, peer, tls, ctx.clone(), permit));
    }
}
