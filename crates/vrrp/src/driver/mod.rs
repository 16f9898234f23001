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
}

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
        }
    }

    /// What `/status` shows of this instance.
    pub fn status(&self) -> SharedStatus {
        self.status.clone()
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
                        tracing::warn!(instance = %self.spec.name, error = %e, "VRRP receive failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some((i, ok)) = samples.recv() => {
                    let changed = self.checks.get_mut(i).and_then(|h| h.observe(ok));
                    if let Some(h) = changed {
                        tracing::info!(instance = %self.spec.name, check = i, health = h.as_str(), "tracked check changed");
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
