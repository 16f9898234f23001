//! Tracking arithmetic, pure: fall/rise hysteresis per check and the
//! effective priority of an instance.
//!
//! keepalived semantics: a check is down after `fall` consecutive failures
//! and up after `rise` consecutive successes; a down check with weight 0 puts
//! the instance in FAULT, one with weight N lowers its priority by N. A check
//! that has not answered yet counts as down, so an instance whose proxy is
//! not running yet waits in FAULT instead of grabbing the VIP (startup
//! ordering must not matter). The probes themselves live in `probe.rs`.
//!
//! A check that answers "draining" (the proxy's `/healthz` after SIGTERM)
//! is down at once, without waiting for `fall` results: the stop is
//! planned, and the sooner the VIP moves the sooner the proxy may stop.

use stackd_common::config::ha::OnDown;

/// Health of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// No result yet.
    Unknown,
    Up,
    Down,
}

/// What one probe saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Up,
    Down,
    /// Down on purpose: the service stops but still serves meanwhile.
    Draining,
}

/// Consecutive-result counter with hysteresis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    health: Health,
    run: u32,
    fall: u32,
    rise: u32,
    draining: bool,
}

// === impl Health ===

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

// === impl Hysteresis ===

impl Hysteresis {
    /// `fall` and `rise` below 1 are treated as 1.
    pub fn new(fall: u32, rise: u32) -> Hysteresis {
        Hysteresis {
            health: Health::Unknown,
            run: 0,
            fall: fall.max(1),
            rise: rise.max(1),
            draining: false,
        }
    }

    /// A check added by a reload: up until it fails `fall` times.
    pub fn up(fall: u32, rise: u32) -> Hysteresis {
        Hysteresis {
            health: Health::Up,
            ..Hysteresis::new(fall, rise)
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Down because the last probe said "draining" (a planned stop).
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Feeds one probe; returns the new health when it changes.
    pub fn probe(&mut self, p: Probe) -> Option<Health> {
        match p {
            Probe::Up => self.observe(true),
            Probe::Down => self.observe(false),
            Probe::Draining => {
                self.draining = true;
                self.run = 0;
                (self.health != Health::Down).then(|| {
                    self.health = Health::Down;
                    Health::Down
                })
            }
        }
    }

    /// Feeds one probe result; returns the new health when it changes.
    /// The first result decides at once (nothing to be hysteretic about).
    pub fn observe(&mut self, ok: bool) -> Option<Health> {
        self.draining = false;
        let next = match (self.health, ok) {
            (Health::Unknown, true) => Some(Health::Up),
            (Health::Unknown, false) => Some(Health::Down),
            (Health::Up, true) | (Health::Down, false) => {
                self.run = 0;
                None
            }
            (Health::Up, false) => {
                self.run += 1;
                (self.run >= self.fall).then_some(Health::Down)
            }
            (Health::Down, true) => {
                self.run += 1;
                (self.run >= self.rise).then_some(Health::Up)
            }
        };
        if let Some(h) = next {
            self.health = h;
            self.run = 0;
        }
        next
    }
}

/// (fault, effective priority) from the configured priority and each
/// check's (health, what a down check does). Priority stays within 1..=254
/// once lowered; 255 (the address owner) only while nothing is down.
pub fn effective(base: u8, checks: impl IntoIterator<Item = (Health, OnDown)>) -> (bool, u8) {
    let mut fault = false;
    let mut minus: u32 = 0;
    for (h, on_down) in checks {
        if h != Health::Up {
            match on_down {
                OnDown::Fault => fault = true,
                OnDown::Lower(w) => minus += u32::from(w.get()),
            }
        }
    }
    if minus == 0 {
        return (fault, base);
    }
    let p = i64::from(base.min(254)) - i64::from(minus);
    (fault, p.clamp(1, 254) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_decides_then_fall_and_rise() {
        let mut h = Hysteresis::new(2, 3);
        assert_eq!(h.observe(true), Some(Health::Up));
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None, "a success resets the failure run");
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(Health::Down));
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some(Health::Up));
    }

    #[test]
    fn draining_is_down_at_once_and_recovers_by_rise() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(h.observe(true), Some(Health::Up));
        assert_eq!(h.probe(Probe::Draining), Some(Health::Down), "no fall wait");
        assert!(h.draining());
        assert_eq!(h.probe(Probe::Draining), None);
        assert_eq!(h.probe(Probe::Down), None, "gone for good: still down");
        assert!(!h.draining(), "no longer a planned stop");
        assert_eq!(h.probe(Probe::Up), None);
        assert_eq!(h.probe(Probe::Up), Some(Health::Up), "rise as usual");
    }

    #[test]
    fn unknown_first_failure_is_down() {
        let mut h = Hysteresis::new(3, 3);
        assert_eq!(h.observe(false), Some(Health::Down));
        assert_eq!(h.health(), Health::Down);
    }

    #[test]
    fn fall_one_rise_one_flips_each_time() {
        let mut h = Hysteresis::new(0, 0);
        assert_eq!(h.observe(true), Some(Health::Up));
        assert_eq!(h.observe(false), Some(Health::Down));
        assert_eq!(h.observe(true), Some(Health::Up));
    }

    fn w(n: u8) -> OnDown {
        std::num::NonZeroU8::new(n).map_or(OnDown::Fault, OnDown::Lower)
    }

    #[test]
    fn weights_and_fault() {
        use Health::*;
        assert_eq!(effective(100, []), (false, 100));
        assert_eq!(effective(100, [(Up, w(0)), (Up, w(20))]), (false, 100));
        assert_eq!(effective(100, [(Down, w(20)), (Down, w(30))]), (false, 50));
        assert_eq!(effective(100, [(Down, w(0)), (Up, w(20))]), (true, 100));
        assert_eq!(
            effective(100, [(Unknown, w(0))]),
            (true, 100),
            "not answered yet: wait in FAULT"
        );
        assert_eq!(
            effective(100, [(Down, w(200))]),
            (false, 1),
            "never reaches 0 (that means leaving)"
        );
        assert_eq!(
            effective(255, [(Down, w(1))]),
            (false, 253),
            "an owner that lost a check is no owner"
        );
        assert_eq!(effective(255, [(Up, w(1))]), (false, 255));
    }
}
