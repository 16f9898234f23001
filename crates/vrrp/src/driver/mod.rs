//! The per-instance event loop: the only place where time passes.
//!
//! ```text
//!   raw socket ──recv──► validate ──Advert──┐
//!   probes ──(i, ok)──► Hysteresis ─Health──┤
//!   timers (deadlines below) ──Expired──────┼──► VirtualRouter::step ──► [Action]
//!   shutdown token ──Shutdown───────────────┘                             │
//!      ▲                                                                   │
//!      └── Ports: send advert, add/del VIPs, queue GARP; status; notifier ◄┘
//! ```
//!
//! Nothing in the loop waits on the outside world except netlink (adding or
//! removing a VIP): GARP bursts go to the announcer task, notifications to
//! the notifier task, and both only keep the latest request.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackd_common::config::ha::InstanceSpec;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::notify::{Notifier, NotifyHandle, Pace};
use crate::ports::Ports;
use crate::probe::Sample;
use crate::state::{Event, Params, State, VirtualRouter};
use crate::status::{InstanceStatus, Metrics, SharedStatus};
use crate::track::Hysteresis;
use crate::validate::Expect;

mod exec;
mod reload;

/// Everything one instance's loop owns.
pub struct Driver<P: Ports> {
    spec: InstanceSpec,
    vr: VirtualRouter,
    ports: P,
    expect: Expect,
    status: SharedStatus,
    metrics: Metrics,
    notify: NotifyHandle,
    checks: Vec<Hysteresis>,
    epoch: Instant,
    master_down: Option<Instant>,
    adver: Option<Instant>,
    garp_again: Option<Instant>,
    /// When the VIPs kept after MASTER go (`Action::ArmRelease`).
    release: Option<Instant>,
    /// Next periodic gratuitous ARP while MASTER (`garp_master_refresh`).
    refresh: Option<Instant>,
    /// Milliseconds since `epoch` at the loop's last turn: the watchdog
    /// feeds systemd only while every instance's loop turns.
    heartbeat: Arc<AtomicU64>,
    reloads: mpsc::Receiver<Reload>,
    reload_tx: mpsc::Sender<Reload>,
}

/// A reloaded spec for a running instance (same interface, VRID, version
/// and peers), with the samples of its new probes.
pub struct Reload {
    pub spec: InstanceSpec,
    pub samples: mpsc::Receiver<Sample>,
    pub notifier: Notifier,
}

/// How often the loop turns at least, for the watchdog.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(t) => sleep_until(t).await,
        None => std::future::pending().await,
    }
}

// === impl Driver ===

impl<P: Ports> Driver<P> {
    /// A driver for `spec` on `ports`; `own` are this host's addresses on the
    /// interface (our adverts looped back are dropped). Starts the notifier.
    pub fn new(
        spec: InstanceSpec,
        ports: P,
        own: Vec<IpAddr>,
        metrics: Metrics,
        notifier: Notifier,
    ) -> Driver<P> {
        let vips: Vec<IpAddr> = spec.vips.iter().map(|v| v.addr()).collect();
        let primary = ports.source();
        let params = Params {
            version: spec.version,
            priority: spec.priority.get(),
            adver_int: spec.advert_int.duration(),
            preempt: spec.preempt,
            preempt_delay: spec.preempt_delay,
            primary,
        };
        let expect = Expect {
            version: spec.version,
            vrid: spec.vrid.get(),
            auth: spec.auth.map(|a| a.bytes()),
            adver_int: spec.advert_int.duration(),
            own: own
                .into_iter()
                .chain([primary])
                .filter(|a| !vips.contains(a))
                .collect(),
            vips,
            peers: spec.unicast_peers.clone(),
        };
        let checks = spec
            .tracks
            .iter()
            .map(|t| Hysteresis::new(t.fall, t.rise))
            .collect();
        metrics.init_instance(&spec.name);
        let status = Arc::new(Mutex::new(InstanceStatus::new(&spec)));
        let notify = notifier.start(
            Pace::for_interval(spec.advert_int.duration()),
            metrics.clone(),
        );
        let (reload_tx, reloads) = mpsc::channel(1);
        Driver {
            vr: VirtualRouter::new(params),
            spec,
            ports,
            expect,
            status,
            metrics,
            notify,
            checks,
            epoch: Instant::now(),
            master_down: None,
            adver: None,
            garp_again: None,
            release: None,
            refresh: None,
            heartbeat: Arc::new(AtomicU64::new(0)),
            reloads,
            reload_tx,
        }
    }

    /// What `/status` shows of this instance.
    pub fn status(&self) -> SharedStatus {
        self.status.clone()
    }

    /// Where a SIGHUP's new spec for this instance goes.
    pub fn reloader(&self) -> mpsc::Sender<Reload> {
        self.reload_tx.clone()
    }

    /// The loop's epoch and its last turn in ms since that epoch: the
    /// daemon's watchdog compares them with the clock to tell a hung loop.
    pub fn heartbeat(&self) -> (Instant, Arc<AtomicU64>) {
        (self.epoch, self.heartbeat.clone())
    }

    /// Runs until `shutdown`; on the way out a MASTER sends priority 0, every
    /// VIP is removed and the STOP notification is delivered.
    pub async fn run(mut self, mut samples: mpsc::Receiver<Sample>, shutdown: CancellationToken) {
        if let Err(e) = self.ports.del_vips().await {
            tracing::warn!(instance = %self.spec.name, error = %e, "could not clean stale VIPs");
        }
        if !self.checks.is_empty() {
            self.health().await;
        }
        self.apply(Event::Startup).await;
        let mut buf = vec![0u8; 2048];
        let mut beat = tokio::time::interval(HEARTBEAT);
        loop {
            let (md, adv, garp) = (self.master_down, self.adver, self.garp_again);
            let (release, refresh) = (self.release, self.refresh);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = beat.tick() => {
                    let ms = self.epoch.elapsed().as_millis() as u64;
                    self.heartbeat.store(ms, Ordering::Relaxed);
                }
                _ = at(release) => {
                    self.release = None;
                    self.apply(Event::ReleaseExpired).await;
                }
                _ = at(refresh) => {
                    self.refresh = None;
                    self.refresh_garp();
                }
                Some(r) = self.reloads.recv() => samples = self.reload(r).await,
                _ = at(md) => {
                    self.master_down = None;
                    self.apply(Event::MasterDownExpired).await;
                }
                _ = at(adv) => {
                    self.adver = None;
                    self.apply(Event::AdverExpired).await;
                }
                r = self.ports.recv(&mut buf) => match r {
                    Ok(got) => self.packet(&buf, got).await,
                    Err(e) => {
                        tracing::warn!(instance = %self.spec.name, error = %e, "VRRP receive failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some((i, p)) = samples.recv() => {
                    let Some(h) = self.checks.get_mut(i) else { continue };
                    let was = h.draining();
                    let changed = h.probe(p);
                    let drain_changed = h.draining() != was;
                    if let Some(h) = changed {
                        tracing::info!(instance = %self.spec.name, check = i, health = h.as_str(), draining = drain_changed, "tracked check changed");
                    }
                    if changed.is_some() || drain_changed {
                        self.health().await;
                    }
                }
                _ = at(garp) => {
                    self.garp_again = None;
                    if self.vr.state() == State::Master {
                        self.announce(false);
                    }
                }
            }
        }
        self.apply(Event::Shutdown).await;
        if let Err(e) = self.ports.del_vips().await {
            tracing::warn!(instance = %self.spec.name, error = %e, "could not remove VIPs on exit");
        }
        self.notify.finish().await;
    }
}
