//! Executing the state machine's actions and feeding it inputs: packets,
//! tracking results. The loop itself is in the parent module.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

use crate::notify::Notice;
use crate::packet::{Advert, Auth, Version};
use crate::ports::Ports;
use crate::socket::Received;
use crate::state::{Action, Event, State};
use crate::status::{labels, state_code, LastTransition};
use crate::track::effective;
use crate::validate::{receive_v4, receive_v6};
use crate::{status, timers};

/// How long after a competing master we re-send gratuitous ARPs: just past
/// Linux's default ARP `locktime` (1 s), which ignores earlier updates.
const REANNOUNCE_AFTER: Duration = Duration::from_millis(1100);

use super::Driver;

// === impl Driver ===

impl<P: Ports> Driver<P> {
    pub(super) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub(super) async fn packet(&mut self, buf: &[u8], got: Received) {
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
    pub(super) async fn health(&mut self) {
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

    pub(super) fn announce(&mut self, first: bool) {
        if let Err(e) = self.ports.announce(self.cfg.garp_master_repeat) {
            tracing::warn!(instance = %self.cfg.name, error = %e, "gratuitous ARP failed");
        }
        if first && !self.cfg.garp_master_delay.is_zero() {
            self.garp_again = Some(Instant::now() + self.cfg.garp_master_delay);
        }
    }

    pub(super) async fn apply(&mut self, event: Event) {
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
            Action::Reannounce => {
                // Linux ignores a gratuitous ARP for an entry updated less
                // than `locktime` (1 s by default) ago: wait past it.
                let at = Instant::now() + REANNOUNCE_AFTER;
                if self.garp_again.is_none_or(|t| t > at) {
                    self.garp_again = Some(at);
                }
            }
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
