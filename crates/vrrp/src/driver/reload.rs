//! SIGHUP for one running instance: the new spec is applied in place, so
//! the state, the timers and every VIP that stays configured carry on.
//! (A change of interface, VRID, version or peers is a new instance; the
//! caller restarts it.)

use tokio::sync::mpsc;

use super::{Driver, Reload};
use crate::notify::Pace;
use crate::ports::Ports;
use crate::probe::Sample;
use crate::state::{Event, Params, State};
use crate::track::Hysteresis;

// === impl Driver ===

impl<P: Ports> Driver<P> {
    /// Applies `r`; returns the samples of the new probes.
    pub(super) async fn reload(&mut self, r: Reload) -> mpsc::Receiver<Sample> {
        let old = std::mem::replace(&mut self.spec, r.spec);
        let name = self.spec.name.clone();
        if old.vips != self.spec.vips {
            let held = self.vr.state() == State::Master || self.vr.holding();
            if let Err(e) = self.ports.set_vips(self.spec.vips.clone(), held).await {
                tracing::error!(instance = %name, error = %e, "reload: changing the VIPs failed");
            }
            self.expect.vips = self.spec.vips.iter().map(|v| v.addr()).collect();
        }
        self.expect.auth = self.spec.auth.map(|a| a.bytes());
        self.expect.adver_int = self.spec.advert_int.duration();
        // A check that did not change keeps its state; a new one starts up
        // until it fails (a reload must not fault a healthy MASTER while
        // waiting for a first probe).
        self.checks = self
            .spec
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| match (old.tracks.get(i), self.checks.get(i)) {
                (Some(o), Some(h)) if o == t => h.clone(),
                _ => Hysteresis::up(t.fall, t.rise),
            })
            .collect();
        if old.notify != self.spec.notify || old.notify_webhook != self.spec.notify_webhook {
            let fresh = r.notifier.start(
                Pace::for_interval(self.spec.advert_int.duration()),
                self.metrics.clone(),
            );
            std::mem::replace(&mut self.notify, fresh).finish().await;
        }
        let spec = &self.spec;
        self.bump(|s| {
            *s = crate::status::InstanceStatus {
                state: s.state,
                master: s.master,
                last_transition: s.last_transition.clone(),
                adverts_sent: s.adverts_sent,
                adverts_received: s.adverts_received,
                transitions: s.transitions,
                rejected: std::mem::take(&mut s.rejected),
                ..crate::status::InstanceStatus::new(spec)
            };
        });
        let params = Params {
            version: self.spec.version,
            priority: self.spec.priority.get(),
            adver_int: self.spec.advert_int.duration(),
            preempt: self.spec.preempt,
            preempt_delay: self.spec.preempt_delay,
            primary: self.vr.params().primary,
        };
        self.apply(Event::Reconfigure(params)).await;
        self.health().await;
        tracing::info!(
            instance = %name,
            priority = self.vr.priority(),
            state = %self.vr.state(),
            "config reloaded"
        );
        r.samples
    }
}
