//! Executing the state machine's actions and feeding it inputs: packets,
//! tracking results. The loop itself is in the parent module.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::Driver;
use crate::notify::{Announced, Notice};
use crate::packet::{Advert, Auth};
use crate::ports::Ports;
use crate::socket::Received;
use crate::state::{Action, Event, Reason, State};
use crate::status::{self, labels, LastTransition, ToLabels};
use crate::timers;
use crate::track::{effective, Health};
use crate::validate::{receive_v4, receive_v6};
use stackd_common::config::ha::OnDown;

/// How long after a competing master we re-send gratuitous ARPs: just past
/// Linux's default ARP `locktime` (1 s), which ignores earlier updates.
const REANNOUNCE_AFTER: Duration = Duration::from_millis(1100);

// === impl Driver ===

impl<P: Ports> Driver<P> {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub(super) async fn packet(&mut self, buf: &[u8], got: Received) {
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
                    .get_or_create(&labels(&self.spec.name))
                    .inc();
                self.bump(|s| s.adverts_received += 1);
                // Valid adverts carry 1..=4095 centiseconds (checked above).
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
                tracing::debug!(instance = %self.spec.name, reason, detail = %r, "VRRP packet discarded");
                self.metrics
                    .rejected
                    .get_or_create(&status::reason(&self.spec.name, reason))
                    .inc();
                self.bump(|s| *s.rejected.entry(reason).or_default() += 1);
            }
        }
    }

    /// Recomputes fault and effective priority from the checks. A fault
    /// whose every down weight-0 check is draining is a planned hand-over.
    pub(super) async fn health(&mut self) {
        let on_down = self.spec.tracks.iter().map(|t| t.on_down);
        let (fault, priority) = effective(
            self.spec.priority.get(),
            self.checks.iter().map(|h| h.health()).zip(on_down.clone()),
        );
        let handover = fault
            && self
                .checks
                .iter()
                .zip(on_down)
                .filter(|(h, d)| *d == OnDown::Fault && h.health() != Health::Up)
                .all(|(h, _)| h.draining());
        let tracks: Vec<_> = self.checks.iter().map(|h| h.health().as_str()).collect();
        self.bump(|s| {
            s.effective_priority = priority;
            for (t, h) in s.tracks.iter_mut().zip(&tracks) {
                t.health = h;
            }
        });
        self.metrics
            .priority
            .get_or_create(&labels(&self.spec.name))
            .set(i64::from(priority));
        self.apply(Event::Health {
            fault,
            handover,
            priority,
        })
        .await;
    }

    pub(super) fn bump(&self, f: impl FnOnce(&mut status::InstanceStatus)) {
        let mut g = match self.status.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g);
    }

    fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.spec.version,
            vrid: self.spec.vrid.get(),
            priority,
            interval_cs: self.spec.advert_int.centis(),
            addrs: self.expect.vips.clone(),
            auth: self.spec.auth.map_or(Auth::None, |p| Auth::Pass(p.bytes())),
        }
    }

    pub(super) fn announce(&mut self, first: bool) {
        self.ports.announce(self.spec.garp.repeat);
        if let (true, Some(delay)) = (first, self.spec.garp.delay) {
            self.garp_again = Some(Instant::now() + delay);
        }
    }

    pub(super) async fn apply(&mut self, event: Event) {
        let now = self.now();
        for action in self.vr.step(event, now) {
            self.execute(action).await;
        }
    }

    async fn execute(&mut self, action: Action) {
        match action {
            Action::SendAdvert { priority } => {
                let a = self.advert(priority);
                match self.ports.send(&|src, dst| a.encode(src, dst)) {
                    Ok(()) => {
                        self.metrics
                            .sent
                            .get_or_create(&labels(&self.spec.name))
                            .inc();
                        self.bump(|s| s.adverts_sent += 1);
                    }
                    Err(e) => {
                        tracing::warn!(instance = %self.spec.name, error = %e, "sending advert failed")
                    }
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
                    tracing::error!(instance = %self.spec.name, error = %e, "adding VIPs failed");
                }
            }
            Action::ArmRelease(d) => self.release = Some(Instant::now() + d),
            Action::CancelRelease => self.release = None,
            Action::DelVips => {
                self.garp_again = None;
                self.release = None;
                if let Err(e) = self.ports.del_vips().await {
                    tracing::error!(instance = %self.spec.name, error = %e, "removing VIPs failed");
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
            Action::Transition { from, to, reason } => self.transition(from, to, reason),
        }
    }

    /// keepalived's `garp_master_refresh`: one more gratuitous ARP per VIP
    /// while MASTER, so a neighbour that missed or ignored (ARP locktime)
    /// the bursts is right again within one refresh interval.
    pub(super) fn refresh_garp(&mut self) {
        if self.vr.state() != State::Master {
            return;
        }
        if let Some(every) = self.spec.garp.refresh {
            self.ports.announce(1);
            self.refresh = Some(Instant::now() + every);
        }
    }

    fn transition(&mut self, from: State, to: State, reason: Reason) {
        self.refresh = match (to, self.spec.garp.refresh) {
            (State::Master, Some(every)) => Some(Instant::now() + every),
            _ => None,
        };
        let name = self.spec.name.clone();
        let priority = self.vr.priority();
        tracing::info!(instance = %name, %from, %to, priority, %reason, "VRRP transition");
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let master = self.vr.master();
        let why = reason.to_string();
        self.bump(|s| {
            s.state = to;
            s.master = master;
            s.transitions += 1;
            s.last_transition = Some(LastTransition {
                from,
                to,
                reason: why.clone(),
                at_ms,
            });
        });
        self.metrics.set_state(&name, to);
        self.metrics
            .transitions
            .get_or_create(&ToLabels {
                vrrp_instance: name.clone(),
                to: to.as_str(),
            })
            .inc();
        self.notify.transition(Notice {
            instance: name,
            state: Announced::of(to),
            previous: from,
            priority,
            reason: why,
            host: crate::notify::hostname(),
        });
    }
}
