//! Server health as pure hysteresis: no sockets, no clock reads.
//!
//! Two independent signals decide whether a server may take traffic:
//!
//! - **Passive** ([`Passive`]): real requests that fail. nginx semantics:
//!   `max_fails` failures, each within `fail_timeout` of the previous one,
//!   make the server unavailable for `fail_timeout`; after that, traffic is
//!   let through again, and one more failure takes it straight back down (the
//!   probe failed) while one success clears the count. `max_fails = 0`
//!   disables passive health.
//! - **Active** ([`Active`]): the prober's GETs. `fall` consecutive failures
//!   mark it down, `rise` consecutive successes mark it up.
//!
//! The passive state packs into one `u64` so the hot path updates it with a
//! single compare-and-swap (see [`Passive::pack`]).

/// A change worth logging and counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Down,
    Up,
}

/// Passive thresholds, in milliseconds of the caller's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PassivePolicy {
    pub(crate) max_fails: u32,
    pub(crate) fail_timeout_ms: u64,
}

/// Failures counted in the current window and when the last one happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Passive {
    pub(crate) fails: u32,
    pub(crate) last_fail_ms: u64,
}

const FAILS_BITS: u32 = 16;
const FAILS_MASK: u64 = (1 << FAILS_BITS) - 1;

// === impl Passive ===

impl Passive {
    /// `last_fail_ms` in the high 48 bits (8,900 years of ms), fails (saturating) in the low 16.
    pub(crate) fn pack(self) -> u64 {
        (self.last_fail_ms << FAILS_BITS) | u64::from(self.fails).min(FAILS_MASK)
    }

    pub(crate) fn unpack(v: u64) -> Passive {
        Passive {
            fails: (v & FAILS_MASK) as u32,
            last_fail_ms: v >> FAILS_BITS,
        }
    }
}

// === impl PassivePolicy ===

impl PassivePolicy {
    fn tripped(&self, s: Passive) -> bool {
        self.max_fails > 0 && s.fails >= self.max_fails
    }

    /// Whether the server may take a request at `now_ms`.
    pub(crate) fn available(&self, s: Passive, now_ms: u64) -> bool {
        !self.tripped(s) || now_ms.saturating_sub(s.last_fail_ms) >= self.fail_timeout_ms
    }

    /// A request to the server failed at `now_ms`.
    pub(crate) fn on_failure(&self, s: Passive, now_ms: u64) -> (Passive, Option<Transition>) {
        if self.max_fails == 0 {
            return (s, None);
        }
        let fails = if self.tripped(s) {
            // The probe after fail_timeout failed: straight back down.
            s.fails
        } else if s.fails > 0 && now_ms.saturating_sub(s.last_fail_ms) < self.fail_timeout_ms {
            s.fails + 1
        } else {
            // The previous failure is older than fail_timeout: a new window.
            1
        };
        let next = Passive {
            fails,
            last_fail_ms: now_ms,
        };
        let went_down = self.available(s, now_ms) && !self.available(next, now_ms);
        (next, went_down.then_some(Transition::Down))
    }

    /// A request succeeded: the failure count is cleared.
    pub(crate) fn on_success(&self, s: Passive) -> (Passive, Option<Transition>) {
        let was_tripped = self.tripped(s);
        let next = Passive { fails: 0, ..s };
        (next, was_tripped.then_some(Transition::Up))
    }
}

/// Active check state: up or down, and how many results in a row disagreed with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Active {
    pub(crate) up: bool,
    pub(crate) streak: u32,
}

impl Default for Active {
    /// Servers start up: traffic flows before the first check, as in nginx.
    fn default() -> Active {
        Active {
            up: true,
            streak: 0,
        }
    }
}

// === impl Active ===

impl Active {
    /// Feeds one check result; `fall`/`rise` are the thresholds from the config.
    pub(crate) fn observe(self, ok: bool, fall: u32, rise: u32) -> (Active, Option<Transition>) {
        if ok == self.up {
            return (
                Active {
                    up: self.up,
                    streak: 0,
                },
                None,
            );
        }
        let streak = self.streak + 1;
        let need = if self.up { fall } else { rise };
        if streak >= need.max(1) {
            let t = if ok { Transition::Up } else { Transition::Down };
            (Active { up: ok, streak: 0 }, Some(t))
        } else {
            (
                Active {
                    up: self.up,
                    streak,
                },
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PassivePolicy = PassivePolicy {
        max_fails: 3,
        fail_timeout_ms: 10_000,
    };

    #[test]
    fn max_fails_within_fail_timeout_trips() {
        let s = Passive::default();
        let (s, t) = P.on_failure(s, 1_000);
        assert_eq!(t, None);
        let (s, t) = P.on_failure(s, 2_000);
        assert_eq!(t, None);
        assert!(P.available(s, 2_000));
        let (s, t) = P.on_failure(s, 3_000);
        assert_eq!(t, Some(Transition::Down));
        assert!(!P.available(s, 3_000));
        assert!(!P.available(s, 12_999));
        assert!(P.available(s, 13_000), "down for exactly fail_timeout");
    }

    #[test]
    fn failures_spread_wider_than_fail_timeout_do_not_trip() {
        let mut s = Passive::default();
        for k in 0..10 {
            let (n, t) = P.on_failure(s, k * 10_001);
            assert_eq!(t, None);
            s = n;
        }
        assert_eq!(s.fails, 1);
    }

    #[test]
    fn failed_probe_goes_straight_back_down_and_success_clears() {
        let p = PassivePolicy {
            max_fails: 2,
            fail_timeout_ms: 1_000,
        };
        let (s, _) = p.on_failure(Passive::default(), 0);
        let (s, t) = p.on_failure(s, 10);
        assert_eq!(t, Some(Transition::Down));
        assert!(p.available(s, 1_010));
        let (s, t) = p.on_failure(s, 1_020);
        assert_eq!(t, Some(Transition::Down));
        assert!(!p.available(s, 1_500));
        let (s, t) = p.on_success(s);
        assert_eq!(t, Some(Transition::Up));
        assert_eq!(s.fails, 0);
        assert!(p.available(s, 1_500));
    }

    #[test]
    fn max_fails_zero_disables() {
        let p = PassivePolicy {
            max_fails: 0,
            fail_timeout_ms: 1_000,
        };
        let mut s = Passive::default();
        for k in 0..5 {
            let (n, t) = p.on_failure(s, k);
            assert_eq!(t, None);
            s = n;
        }
        assert!(p.available(s, 5));
    }

    #[test]
    fn pack_round_trips() {
        let s = Passive {
            fails: 7,
            last_fail_ms: 123_456_789,
        };
        assert_eq!(Passive::unpack(s.pack()), s);
        let big = Passive {
            fails: 1 << 20,
            last_fail_ms: 1,
        };
        assert_eq!(Passive::unpack(big.pack()).fails, 0xffff);
    }

    #[test]
    fn active_fall_and_rise() {
        let (fall, rise) = (2, 3);
        let a = Active::default();
        let (a, t) = a.observe(false, fall, rise);
        assert_eq!((a.up, t), (true, None));
        let (a, t) = a.observe(true, fall, rise);
        assert_eq!(
            (a.up, a.streak, t),
            (true, 0, None),
            "a success resets the streak"
        );
        let (a, _) = a.observe(false, fall, rise);
        let (a, t) = a.observe(false, fall, rise);
        assert_eq!((a.up, t), (false, Some(Transition::Down)));
        let (a, _) = a.observe(true, fall, rise);
        let (a, _) = a.observe(true, fall, rise);
        let (a, t) = a.observe(false, fall, rise);
        assert_eq!((a.up, t), (false, None), "a failure resets the rise streak");
        let (a, _) = a.observe(true, fall, rise);
        let (a, _) = a.observe(true, fall, rise);
        let (a, t) = a.observe(true, fall, rise);
        assert_eq!((a.up, t), (true, Some(Transition::Up)));
    }
}
