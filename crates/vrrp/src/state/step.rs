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
            (state, Event::Health { fault, priority }) => {
                let was_fault = self.fault;
                self.fault = fault;
                self.priority = priority;
                match state {
                    // keepalived FAULT: a weight-0 check failed. A master
                    // resigns with priority 0 so the backup takes over after
                    // Skew_Time (RFC 5798 §6.4.2), not Master_Down_Interval.
                    State::Master if fault => self.resign(State::Fault, Reason::Fault, &mut out),
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

            // --- RFC 5798 §6.4.1 Initialize ---------------------------------
            (State::Initialize, Event::Startup) => self.start(Reason::Startup, &mut out),
            (State::Initialize, _) => {}

            // --- RFC 5798 §6.4.2 Backup ---------------------------------------
            // "If a Shutdown event is received, then: Cancel the Master_Down_Timer;
            // Transition to the {Initialize} state."
            (State::Backup, Event::Shutdown) => {
                out.push(Action::CancelTimers);
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
                    out.push(Action::CancelTimers);
                    out.push(Action::DelVips);
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
                } else {
                    // "Otherwise: Discard ADVERTISEMENT." The sender still
                    // believes it is master, so its gratuitous ARPs may have
                    // redirected clients: our next advert makes it yield
                    // (§6.4.3 on its side), and we re-announce the VIPs.
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
                }
            }
            (State::Fault, _) => {}
        }
        out
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
