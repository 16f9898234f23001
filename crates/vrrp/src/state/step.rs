//! [`VirtualRouter::step`]: one match arm per RFC 5798 §6.4 clause.

use std::net::IpAddr;
use std::time::Duration;

use super::{Action, Event, Reason, State, VirtualRouter};
use crate::packet::Version;

// === impl VirtualRouter ===

impl VirtualRouter {
    /// Feeds one event at monotonic time `now`; returns what to do, in order.
    pub fn step(&mut self, event: Event, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, event) {
            // --- tracking, any state -------------------------------------
            (
                state,
                Event::Health {
                    fault,
                    handover,
                    priority,
                },
            ) => {
                let was_fault = self.fault;
                self.fault = fault;
                self.priority = priority;
                match state {
                    // A planned stop: the same priority-0 advert, so the
                    // backup takes over after Skew_Time, but the VIPs stay
                    // until it has (clients keep reaching a service that
                    // still serves, instead of nobody for Skew_Time).
                    State::Master if fault && handover => self.hand_over(&mut out),
                    // keepalived FAULT: a weight-0 check failed. A master
                    // resigns with priority 0 so the backup takes over after
                    // Skew_Time (RFC 5798 §6.4.2), not Master_Down_Interval.
                    State::Master if fault => self.resign(State::Fault, Reason::Fault, &mut out),
                    // The service we hand over for is gone now: keeping
                    // its address would only get clients refused.
                    State::Fault if fault && !handover && self.holding => {
                        self.holding = false;
                        out.push(Action::CancelRelease);
                        out.push(Action::DelVips);
                    }
                    State::Backup if fault => {
                        out.push(Action::CancelTimers);
                        self.go(State::Fault, Reason::Fault, &mut out);
                    }
                    State::Fault if !fault && was_fault => {
                        self.start(Reason::FaultCleared, &mut out)
                    }
                    // A new priority goes out with the next advert (RFC 5798 §6.4.3).
                    _ => {}
                }
            }

            // --- the VIPs kept after MASTER, any state but MASTER --------------
            (State::Master, Event::ReleaseExpired) => {}
            (_, Event::ReleaseExpired) => {
                if std::mem::take(&mut self.holding) {
                    out.push(Action::DelVips);
                }
            }

            // --- SIGHUP: same router, new parameters -------------------------
            // The state stays; a new priority goes out with the next advert
            // (RFC 5798 §6.4.3) and the others take their own decisions on it.
            (_, Event::Reconfigure(params)) => {
                if params.adver_int != self.params.adver_int && self.state == State::Master {
                    self.master_adver_int = params.adver_int;
                    out.push(Action::ArmAdver(params.adver_int));
                }
                self.params = params;
            }

            // --- RFC 5798 §6.4.1 Initialize ---------------------------------
            (State::Initialize, Event::Startup) => self.start(Reason::Startup, &mut out),
            (State::Initialize, _) => {}

            // --- RFC 5798 §6.4.2 Backup ---------------------------------------
            // "If a Shutdown event is received, then: Cancel the Master_Down_Timer;
            // Transition to the {Initialize} state."
            (State::Backup, Event::Shutdown) => {
                out.push(Action::CancelTimers);
                if std::mem::take(&mut self.holding) {
                    out.push(Action::DelVips);
                }
                self.go(State::Initialize, Reason::Shutdown, &mut out);
            }
            // "If the Master_Down_Timer fires, then: Send an ADVERTISEMENT; ...
            // Set the Adver_Timer to Advertisement_Interval; Transition to Master."
            (State::Backup, Event::MasterDownExpired) => {
                self.become_master(Reason::MasterDown, &mut out)
            }
            (
                State::Backup,
                Event::Advert {
                    src,
                    priority,
                    interval,
                },
            ) => {
                self.master = Some(src);
                self.heard_new_master(priority, &mut out);
                if priority == 0 {
                    // "If the Priority in the ADVERTISEMENT is zero, then: Set the
                    // Master_Down_Timer to Skew_Time."
                    out.push(Action::ArmMasterDown(self.skew()));
                } else if !self.params.preempt
                    || priority >= self.priority
                    || self.defer_preempt(now)
                {
                    // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT
                    // is greater than or equal to the local Priority, then: Set
                    // Master_Adver_Interval to Adver Interval contained in the
                    // ADVERTISEMENT; Recompute the Master_Down_Interval; Reset the
                    // Master_Down_Timer to Master_Down_Interval."
                    if priority >= self.priority {
                        self.preempt_at = None;
                    }
                    if self.params.version == Version::V3 {
                        self.master_adver_int = interval;
                    }
                    out.push(Action::ArmMasterDown(self.master_down()));
                }
                // "Otherwise: Discard the ADVERTISEMENT" (we preempt when the
                // Master_Down_Timer fires).
            }
            (State::Backup, Event::Startup | Event::AdverExpired) => {}

            // --- RFC 5798 §6.4.3 Master ---------------------------------------
            // "If the Adver_Timer fires, then: Send an ADVERTISEMENT; Reset the
            // Adver_Timer to Advertisement_Interval."
            (State::Master, Event::AdverExpired) => {
                out.push(Action::SendAdvert {
                    priority: self.priority,
                });
                out.push(Action::ArmAdver(self.params.adver_int));
            }
            // "If a Shutdown event is received, then: Cancel the Adver_Timer; Send an
            // ADVERTISEMENT with Priority = 0; Transition to the {Initialize} state."
            (State::Master, Event::Shutdown) => {
                self.resign(State::Initialize, Reason::Shutdown, &mut out)
            }
            (
                State::Master,
                Event::Advert {
                    src,
                    priority,
                    interval,
                },
            ) => {
                if priority == 0 {
                    // "If the Priority in the ADVERTISEMENT is zero, then: Send an
                    // ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval."
                    out.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    out.push(Action::ArmAdver(self.params.adver_int));
                } else if priority > self.priority
                    || (priority == self.priority && wins_tie(src, self.params.primary))
                {
                    // "If the Priority in the ADVERTISEMENT is greater than the local
                    // Priority, or the Priority is equal and the primary IPvX Address of
                    // the sender is greater than the local primary IPvX Address, then:
                    // Cancel Adver_Timer; Set Master_Adver_Interval to Adver Interval
                    // contained in the ADVERTISEMENT; Recompute the Master_Down_Interval;
                    // Set Master_Down_Timer to Master_Down_Interval; Transition to Backup."
                    // The VIPs go after RELEASE_LINGER instead of at once:
                    // the new master's gratuitous ARPs move the clients, and
                    // what we accepted just before still gets its answers out.
                    out.push(Action::CancelTimers);
                    out.push(Action::ArmRelease(super::RELEASE_LINGER));
                    self.holding = true;
                    self.heard = true;
                    if self.params.version == Version::V3 {
                        self.master_adver_int = interval;
                    } else {
                        self.master_adver_int = self.params.adver_int;
                    }
                    out.push(Action::ArmMasterDown(self.master_down()));
                    self.go(
                        State::Backup,
                        Reason::Preempted { by: src, priority },
                        &mut out,
                    );
                    self.master = Some(src);
                } else if self.answer_due(now) {
                    // "Otherwise: Discard ADVERTISEMENT." The sender still
                    // believes it is master (a split brain healing), so its
                    // gratuitous ARPs may have redirected clients. keepalived
                    // (vrrp_state_master_rx, lower priority) answers at once
                    // with an advert, which makes it yield (§6.4.3 on its
                    // side), and a gratuitous ARP burst; we also re-announce
                    // past the receivers' ARP locktime. At most once per
                    // Advertisement_Interval: forged adverts must not turn us
                    // into a packet amplifier.
                    out.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    out.push(Action::Announce);
                    out.push(Action::Reannounce);
                }
            }
            (State::Master, Event::Startup | Event::MasterDownExpired) => {}

            // --- FAULT (keepalived): silent until tracking recovers ------------
            (State::Fault, Event::Shutdown) => {
                self.go(State::Initialize, Reason::Shutdown, &mut out)
            }
            (State::Fault, Event::Advert { src, priority, .. }) => {
                if priority != 0 {
                    self.master = Some(src);
                    self.heard_new_master(priority, &mut out);
                }
            }
            (State::Fault, _) => {}
        }
        out
    }

    /// Whether a lower-priority master may be answered now (once per
    /// Advertisement_Interval).
    fn answer_due(&mut self, now: Duration) -> bool {
        let due = self
            .answered_at
            .is_none_or(|t| now.saturating_sub(t) >= self.params.adver_int);
        if due {
            self.answered_at = Some(now);
        }
        due
    }

    /// keepalived `preempt_delay`: true while we should still defer to a
    /// lower-priority master we have just seen.
    fn defer_preempt(&mut self, now: Duration) -> bool {
        if self.params.preempt_delay.is_zero() {
            return false;
        }
        let at = *self
            .preempt_at
            .get_or_insert(now + self.params.preempt_delay);
        now < at
    }
}

/// RFC 5798 §6.4.3 tie-break: the higher primary address wins.
fn wins_tie(theirs: IpAddr, ours: IpAddr) -> bool {
    match (theirs, ours) {
        (IpAddr::V4(t), IpAddr::V4(o)) => t > o,
        (IpAddr::V6(t), IpAddr::V6(o)) => t > o,
        _ => false,
    }
}
