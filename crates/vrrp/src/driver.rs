//! The per-instance event loop: the only place where time passes.
//!
//! ```text
//!   raw socket ──recv──► validate ──Advert──┐
//!   probes ──(i, ok)──► Hysteresis ─Health──┤
//!   timers (deadlines below) ──Expired──────┼──► VirtualRouter::step ──► [Action]
//!   shutdown token ──Shutdown───────────────┘                             │
//!      ▲                                                                   │
//!      └──── Ports: send advert, add/del VIPs, GARP; status, notify ◄──────┘
//! ```

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stackd_common::config::ha::Instance;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::notify::{Notice, Notifier};
use crate::packet::{Advert, Auth, Version};
use crate::ports::Ports;
use crate::probe::Sample;
use crate::socket::Received;
use crate::state::{Action, Event, State, VirtualRouter};
use crate::status::{labels, state_code, LastTransition, Metrics, SharedStatus};
use crate::track::{effective, Hysteresis};
use crate::validate::{receive_v4, receive_v6, Expect};
use crate::{status, timers};

/// Everything one instance's loop owns.
pub struct Driver<P: Ports> {
    pub cfg: Instance,
    pub vr: VirtualRouter,
    pub ports: P,
    pub expect: Expect,
    pub status: SharedStatus,
    pub metrics: Metrics,
    pub notifier: Notifier,
    pub checks: Vec<Hysteresis>,
    epoch: Instant,
    master_down: Option<Instant>,
    adver: Option<Instant>,
    garp_again: Option<Instant>,
}

async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(t) => sleep_until(t).await,
        None => std::future::pending().await,
    }
}

// === impl Driver ===

impl<P: Ports> Driver<P> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Instance,
        vr: VirtualRouter,
        ports: P,
        expect: Expect,
        status: SharedStatus,
        metrics: Metrics,
        notifier: Notifier,
    ) -> Driver<P> {
        let checks = cfg
            .track
            .iter()
            .map(|t| Hysteresis::new(t.fall, t.rise))
            .collect();
        Driver {
            cfg,
            vr,
            ports,
            expect,
            status,
            metrics,
            notifier,
            checks,
            epoch: Instant::now(),
            master_down: None,
            adver: None,
            garp_again: None,
        }
    }

    /// Runs until `shutdown`; on the way out a MASTER sends priority 0 and
    /// every VIP is removed.
    pub async fn run(mut self, mut samples: mpsc::Receiver<Sample>, shutdown: CancellationToken) {
        if let Err(e) = self.ports.del_vips().await {
            tracing::warn!(instance = %self.cfg.name, error = %e, "could not clean stale VIPs");
        }
        if !self.checks.is_empty() {
            self.health().await;
        }
        self.apply(Event::Startup).await;
        let mut buf = vec![0u8; 2048];
        loop {
            let (md, adv, garp) = (self.master_down, self.adver, self.garp_again);
            tokio::select! {
                _ = shutdown.cancelled() => break,
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
                        tracing::warn!(instance = %self.cfg.name, error = %e, "VRRP receive failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some((i, ok)) = samples.recv() => {
                    let changed = self.checks.get_mut(i).and_then(|h| h.observe(ok));
                    if let Some(h) = changed {
                        tracing::info!(instance = %self.cfg.name, check = i, health = h.as_str(), "tracked check changed");
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
            tracing::warn!(instance = %self.cfg.name, error = %e, "could not remove VIPs on exit");
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn packet(&mut self, buf: &[u8], got: Received) {
        let name = self.cfg.name.clone();
        let checked = match got {
            Received::V4 { len } => receive_v4(buf.get(..len).unwrap_or(buf), &self.expect)
                .map(|(s, a)| (IpAddr::V4(s), a)),
            Received::V6 {
                len,
                src,
                dst,
                hop_limit,
            } => receive_v6(
                buf.get(..len).unwrap_or(buf),
                src,
                dst,
                hop_limit,
                &self.expect,
            )
            .map(|a| (IpAddr::V6(src), a)),
        };
        match checked {
            Ok((src, a)) => {
                self.metrics
                    .received
                    .get_or_create(&labels(&name, None))
                    .inc();
                self.bump(|s| s.adverts_received += 1);
                let interval = timers::centis(a.interval_cs);
                self.apply(Event::Advert {
                    src,
                    priority: a.priority,
                    interval,
                })
                .await;
                let master = self.vr.master();
                self.bump(|s| s.master = master);
            }
            Err(r) => {
                let reason = r.label();
                tracing::debug!(instance = %name, reason, detail = %r, "VRRP packet discarded");
                self.metrics
                    .rejected
                    .get_or_create(&labels(&name, Some(("reason", reason))))
                    .inc();
                self.bump(|s| *s.rejected.entry(reason).or_default() += 1);
            }
        }
    }

    /// Recomputes fault and effective priority from the checks.
    async fn health(&mut self) {
        let weights = self.cfg.track.iter().map(|t| t.weight);
        let (fault, priority) = effective(
            self.vr.params().priority,
            self.checks.iter().map(|h| h.health()).zip(weights),
        );
        let tracks: Vec<_> = self.checks.iter().map(|h| h.health().as_str()).collect();
        self.bump(|s| {
            s.effective_priority = priority;
            for (t, h) in s.tracks.iter_mut().zip(&tracks) {
                t.health = h;
            }
        });
        self.metrics
            .priority
            .get_or_create(&labels(&self.cfg.name, None))
            .set(i64::from(priority));
        self.apply(Event::Health { fault, priority }).await;
    }

    fn bump(&self, f: impl FnOnce(&mut status::InstanceStatus)) {
        let mut g = match self.status.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g);
    }

    fn advert(&self, priority: u8) -> Advert {
        let v3 = self.cfg.version == 3;
        Advert {
            version: if v3 { Version::V3 } else { Version::V2 },
            vrid: self.expect.vrid,
            priority,
            interval_cs: if v3 {
                timers::to_centis(self.cfg.advert_int)
            } else {
                (self.cfg.advert_int.as_secs().clamp(1, 255) * 100) as u16
            },
            addrs: self.expect.vips.clone(),
            auth: self.expect.auth.map_or(Auth::None, Auth::Pass),
        }
    }

    fn announce(&mut self, first: bool) {
        if let Err(e) = self.ports.announce(self.cfg.garp_master_repeat) {
            tracing::warn!(instance = %self.cfg.name, error = %e, "gratuitous ARP failed");
        }
        if first && !self.cfg.garp_master_delay.is_zero() {
            self.garp_again = Some(Instant::now() + self.cfg.garp_master_delay);
        }
    }

    async fn apply(&mut self, event: Event) {
        let now = self.now();
        for action in self.vr.step(event, now) {
            let t0 = Instant::now();
            let what = format!("{action:?}");
            self.execute(action).await;
            tracing::trace!(instance = %self.cfg.name, action = %what, took = ?t0.elapsed(), "executed");
        }
    }

    async fn execute(&mut self, action: Action) {
        let name = self.cfg.name.clone();
        match action {
            Action::SendAdvert { priority } => {
                let a = self.advert(priority);
                match self.ports.send(&|src, dst| a.encode(src, dst)) {
                    Ok(()) => {
                        self.metrics.sent.get_or_create(&labels(&name, None)).inc();
                        self.bump(|s| s.adverts_sent += 1);
                    }
                    Err(e) => tracing::warn!(instance = %name, error = %e, "sending advert failed"),
                }
            }
            Action::ArmMasterDown(d) => self.master_down = Some(Instant::now() + d),
            Action::ArmAdver(d) => self.adver = Some(Instant::now() + d),
            Action::CancelTimers => {
                self.master_down = None;
                self.adver = None;
            }
            Action::AddVips => {
                if let Err(e) = self.ports.add_vips().await {
                    tracing::error!(instance = %name, error = %e, "adding VIPs failed");
                }
            }
            Action::DelVips => {
                self.garp_again = None;
                if let Err(e) = self.ports.del_vips().await {
                    tracing::error!(instance = %name, error = %e, "removing VIPs failed");
                }
            }
            Action::Announce => self.announce(true),
            Action::Transition { from, to, reason } => {
                let shown = if to == State::Initialize {
                    "STOP".to_owned()
                } else {
                    to.to_string()
                };
                tracing::info!(instance = %name, from = %from, to = %shown, priority = self.vr.priority(), %reason, "VRRP transition");
                let at_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let master = self.vr.master();
                self.bump(|s| {
                    s.state = shown.clone();
                    s.master = master;
                    s.transitions += 1;
                    s.last_transition = Some(LastTransition {
                        from: from.to_string(),
                        to: shown.clone(),
                        reason: reason.to_string(),
                        at_ms,
                    });
                });
                self.metrics
                    .state
                    .get_or_create(&labels(&name, None))
                    .set(state_code(to));
                self.metrics
                    .transitions
                    .get_or_create(&labels(&name, Some(("to", &shown))))
                    .inc();
                self.notifier.send(Notice {
                    instance: name.clone(),
                    state: shown,
                    previous: from.to_string(),
                    priority: self.vr.priority(),
                    reason: reason.to_string(),
                    host: crate::notify::hostname(),
                });
            }
        }
    }
}
