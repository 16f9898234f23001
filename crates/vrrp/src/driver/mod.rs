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

use std::time::Duration;

use stackd_common::config::ha::Instance;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::notify::Notifier;
use crate::ports::Ports;
use crate::probe::Sample;
use crate::state::{Event, State, VirtualRouter};
use crate::status::{Metrics, SharedStatus};
use crate::track::Hysteresis;
use crate::validate::Expect;

mod exec;

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
    pub(super) epoch: Instant,
    pub(super) master_down: Option<Instant>,
    pub(super) adver: Option<Instant>,
    pub(super) garp_again: Option<Instant>,
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
}
