//! The serving loop both modes share: the running snapshot, the admin
//! pages, the probers, config reloads, readiness, and the stop sequence
//! (`handover.rs`: demote then drain, or hand over to a new binary).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use stackd_common::config::ProxyConfig;
use stackd_common::upgrade::Ready;
use stackd_common::{systemd, CancellationToken};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;

use super::handover::{Control, Ending, Sockets};
use super::lot::Lot;
use super::{bind, conn, Bound, Ctx};
use crate::error::{ErrorKind, ProxyError};
use crate::observe::stats::{Reloads, Timeouts};
use crate::snapshot::Snapshot;
use crate::upstream::{pool, prober};
use crate::worker::PerWorker;

/// Where the server is in its life, as `/healthz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Accepting and serving.
    Serving = 0,
    /// Asked to stop: still accepting and serving, `/healthz` 503
    /// "draining" so the VIP moves away first (`drain_delay`).
    Draining = 1,
    /// Not accepting; in-flight requests finish within `shutdown_grace`.
    Stopping = 2,
}

/// Server-wide numbers the admin pages read.
#[derive(Debug)]
pub(crate) struct Observed {
    pub(crate) timeouts: Timeouts,
    pub(crate) reloads: Reloads,
    /// Idle client connections held by the lots, without tasks.
    pub(crate) parked: AtomicUsize,
    /// Slots the accept loops hold for connections not yet accepted.
    awaiting_accept: AtomicUsize,
    /// Each worker's CPU time in nanoseconds, as of its last turn
    /// ([`crate::worker::turn_ends`]); zero without workers.
    pub(crate) cpu_ns: PerWorker<AtomicU64>,
    phase: AtomicU8,
    sem: Arc<Semaphore>,
    max_connections: usize,
}

impl Observed {
    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Serving,
            1 => Phase::Draining,
            _ => Phase::Stopping,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    /// Client connections open now (tunnels included): the slots taken,
    /// less those the accept loops hold for their next connection.
    pub(crate) fn connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.sem.available_permits())
            .saturating_sub(self.awaiting_accept.load(Ordering::Relaxed))
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
    /// Every listening socket, for a hand-over to a new binary.
    pub(crate) sockets: Sockets,
    first_round: Option<prober::FirstRound>,
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
            parked: AtomicUsize::new(0),
            awaiting_accept: AtomicUsize::new(0),
            cpu_ns: PerWorker::default(),
            phase: AtomicU8::new(Phase::Serving as u8),
            sem: sem.clone(),
            max_connections: max,
        });
        observed.reloads.record(true, crate::clock::unix_ms());
        let admin_stop = CancellationToken::new();
        let sockets = Sockets::default();
        if let Some(l) = admin {
            if let Ok(addr) = l.local_addr() {
                sockets.add(addr, &l);
            }
            let a = super::admin::admin(shared.clone(), observed.clone());
            tokio::spawn(a.serve(l, admin_stop.clone()));
        }
        let (prober, first_round) =
            prober::spawn(&shared.load().upstreams, CancellationToken::new());
        tokio::spawn(pool::reap(Arc::downgrade(&shared)));
        Ok(Server {
            shared,
            observed,
            sem,
            drain: CancellationToken::new(),
            kill: CancellationToken::new(),
            prober,
            admin_stop,
            sockets,
            first_round: Some(first_round),
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
                systemd::reloaded(false, &format!("reload rejected: {e}"));
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
        self.prober = prober::spawn(&next.upstreams, CancellationToken::new()).0;
        self.observed.reloads.record(true, crate::clock::unix_ms());
        systemd::reloaded(true, "serving (config reloaded)");
        tracing::info!(
            upstreams = next.upstreams.len(),
            routes = next.cfg.route.len(),
            "config reloaded"
        );
        Some(next)
    }

    /// Says "ready" (to systemd, or to the old process of an upgrade)
    /// once the first round of health checks is done; listeners must be
    /// bound and accepting first.
    pub(crate) fn announce_ready(&mut self, ready: Option<Ready>) {
        let first = self.first_round.take();
        tokio::spawn(async move {
            if let Some(f) = first {
                f.await;
            }
            match ready {
                // The old process tells systemd our PID (MAINPID) itself.
                Some(r) => r.send(),
                None => systemd::ready("serving"),
            }
        });
    }

    /// Applies configs from `reloads` until one takes effect (returned) or
    /// the serving ends (`Err`: shutdown, or a new process took over). A
    /// closed channel just means no more reloads.
    pub(crate) async fn next_reload(
        &mut self,
        reloads: &mut mpsc::Receiver<ProxyConfig>,
        control: &mut Control,
    ) -> Result<Arc<Snapshot>, Ending> {
        let sockets = self.sockets.clone();
        let ending = control.next_ending(&sockets);
        tokio::pin!(ending);
        let mut open = true;
        loop {
            let cfg = tokio::select! {
                e = &mut ending => return Err(e),
                next = reloads.recv(), if open => next,
            };
            match cfg {
                None => open = false,
                Some(cfg) => {
                    if let Some(next) = self.reload(cfg) {
                        return Ok(next);
                    }
                }
            }
        }
    }

    /// Leaves as `ending` says, then [`Server::stop`]s. `stop_accepting`
    /// stops the accept loops; on a shutdown they first take what the
    /// kernel queued, since closing a listener resets those connections.
    pub(crate) async fn leave(
        self,
        ending: Ending,
        control: &Control,
        stop_accepting: impl FnOnce(),
        trackers: &[TaskTracker],
    ) {
        match ending {
            Ending::Shutdown => {
                let delay = control.drain_delay(self.shared.load().cfg.drain_delay);
                self.observed.set_phase(Phase::Draining);
                systemd::stopping("draining");
                if !delay.is_zero() {
                    tracing::info!(?delay, vips = ?control.drain_vips, "draining: /healthz says so while still serving");
                }
                control.drain_wait(delay).await;
            }
            Ending::HandedOver(pid) => {
                // The new process answers /healthz from now on; this one
                // must never answer it "stopping" on a kept-alive connection.
                self.admin_stop.cancel();
                systemd::main_pid(pid);
            }
        }
        stop_accepting();
        // Our duplicates would keep the sockets listening (and the kernel
        // completing handshakes nobody accepts).
        self.sockets.clear();
        self.stop(trackers).await;
    }

    /// Stops: `/healthz` says so, connections drain within `shutdown_grace`,
    /// then whatever is left is closed. Accept loops must be stopped first.
    pub(crate) async fn stop(self, trackers: &[TaskTracker]) {
        let grace = self.shared.load().cfg.shutdown_grace;
        self.observed.set_phase(Phase::Stopping);
        systemd::stopping("stopping: draining connections");
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
    reloads: mpsc::Receiver<ProxyConfig>,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    serve_with(listeners, admin, cfg, reloads, Control::new(shutdown)).await
}

/// [`serve`] as [`Control`] says: demote then drain, hand over on upgrade.
pub(crate) async fn serve_with(
    listeners: Vec<Bound>,
    admin: Option<TcpListener>,
    cfg: ProxyConfig,
    mut reloads: mpsc::Receiver<ProxyConfig>,
    mut control: Control,
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
        server.sockets.add(addr, &b.listener);
        let stop = loops
            .entry(addr)
            .or_insert_with(|| (CancellationToken::new(), b.tls))
            .0
            .clone();
        start_loop(b.listener, b.tls, &ctx, stop);
        tracing::info!(%addr, tls = b.tls, "proxy listening");
    }
    server.announce_ready(control.ready.take());
    let ending = loop {
        match server.next_reload(&mut reloads, &mut control).await {
            Ok(next) => relisten(&ctx, &mut loops, &server.sockets, &next).await,
            Err(e) => break e,
        }
    };
    let stop_all = || loops.values().for_each(|(t, _)| t.cancel());
    server
        .leave(
            ending,
            &control,
            stop_all,
            std::slice::from_ref(&ctx.tracker),
        )
        .await;
    Ok(())
}

fn start_loop(l: TcpListener, tls: bool, ctx: &Arc<Ctx>, stop: CancellationToken) {
    ctx.tracker.spawn(accept_loop(l, tls, ctx.clone(), stop));
}

/// Opens and closes listeners to match a reloaded config.
async fn relisten(
    ctx: &Arc<Ctx>,
    loops: &mut HashMap<SocketAddr, (CancellationToken, bool)>,
    sockets: &Sockets,
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
            sockets.remove(*addr);
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
                sockets.add(addr, &l);
                let stop = CancellationToken::new();
                start_loop(l, tls, ctx, stop.clone());
                loops.insert(addr, (stop, tls));
                tracing::info!(%addr, tls, "listener opened by reload");
            }
            Err(e) => tracing::error!(error = %e, "reload: cannot open listener"),
        }
    }
}

/// Takes a `max_connections` permit, then accepts until `stop`; each
/// connection keeps its permit (and its place in the tracker) until it closes.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: bool,
    ctx: Arc<Ctx>,
    stop: CancellationToken,
) {
    // Idle plain connections leave their tasks for the lot (TLS ones stay:
    // rustls may hold bytes the socket does not show).
    let lot = match tls {
        true => None,
        false => Lot::start(&ctx, stop.clone())
            .inspect_err(|e| tracing::warn!(error = %e, "no lot for idle connections; they keep their tasks"))
            .ok(),
    };
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return accept_queued(&listener, tls, &ctx),
            p = ctx.sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let awaiting = AwaitingAccept::new(&ctx.observed);
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return accept_queued(&listener, tls, &ctx),
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
        drop(awaiting);
        let _ = stream.set_nodelay(true);
        let task = conn::accepted(stream, peer, tls, ctx.clone(), permit, lot.clone());
        ctx.tracker.spawn(task);
    }
}

/// An accept loop holding a slot while it waits for a connection: not a
/// connection, so `/metrics` does not count it as one.
struct AwaitingAccept<'a>(&'a Observed);

impl<'a> AwaitingAccept<'a> {
    fn new(o: &'a Observed) -> AwaitingAccept<'a> {
        o.awaiting_accept.fetch_add(1, Ordering::Relaxed);
        AwaitingAccept(o)
    }
}

impl Drop for AwaitingAccept<'_> {
    fn drop(&mut self) {
        self.0.awaiting_accept.fetch_sub(1, Ordering::Relaxed);
    }
}

/// On the way out of a drain: serves the connections the kernel has
/// already accepted on `listener`, which closing it would reset. Not after
/// a hand-over: the socket stays open in the new process, which takes them.
fn accept_queued(listener: &TcpListener, tls: bool, ctx: &Arc<Ctx>) {
    if ctx.observed.phase() != Phase::Draining {
        return;
    }
    let sock = socket2::SockRef::from(listener);
    let mut taken = 0usize;
    while let Ok(permit) = ctx.sem.clone().try_acquire_owned() {
        let Ok((s, peer)) = sock.accept() else { break };
        let (Some(peer), Ok(())) = (peer.as_socket(), s.set_nonblocking(true)) else {
            continue;
        };
        let Ok(stream) = tokio::net::TcpStream::from_std(s.into()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let task = conn::accepted(stream, peer, tls, ctx.clone(), permit, None);
        ctx.tracker.spawn(task);
        taken += 1;
    }
    if taken > 0 {
        tracing::info!(
            connections = taken,
            "took the connections queued before the listener closed"
        );
    }
}
