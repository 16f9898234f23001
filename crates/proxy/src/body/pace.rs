//! How long a request body may take: pure arithmetic on when it started,
//! when its last byte came and how many have come.
//!
//! Two limits, whichever ends first:
//! - `client_body_timeout` (nginx): no body byte for this long;
//! - `client_body_min_rate` (Apache's mod_reqtimeout `MinRate`): after a
//!   first `client_body_timeout` of grace, every `rate` bytes buy one more
//!   second. A client sending a byte every few seconds never trips the
//!   first limit; it trips this one.

use std::time::Duration;

use tokio::time::Instant;

/// The body limits, resolved from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BodyLimits {
    /// Longest pause between two body bytes.
    pub(crate) idle: Duration,
    /// Bytes per second owed after the first `idle`; 0: no minimum.
    pub(crate) min_rate: u64,
}

/// Which of the two limits a deadline comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyTimer {
    Idle,
    Rate,
}

/// Progress of one request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pace {
    pub(crate) started: Instant,
    pub(crate) last: Instant,
    pub(crate) received: u64,
}

// === impl Pace ===

impl Pace {
    pub(crate) fn start(now: Instant) -> Pace {
        Pace {
            started: now,
            last: now,
            received: 0,
        }
    }

    /// `n` more bytes arrived at `now`.
    pub(crate) fn add(self, n: u64, now: Instant) -> Pace {
        Pace {
            last: if n > 0 { now } else { self.last },
            received: self.received.saturating_add(n),
            ..self
        }
    }

    /// When the body must have made more progress, and which limit says so.
    pub(crate) fn deadline(&self, l: &BodyLimits) -> (Instant, BodyTimer) {
        let idle = self.last + l.idle;
        if l.min_rate == 0 {
            return (idle, BodyTimer::Idle);
        }
        let earned = Duration::from_secs_f64(self.received as f64 / l.min_rate as f64);
        let rate = self.started + l.idle + earned.min(Duration::from_secs(1 << 32));
        if rate < idle {
            (rate, BodyTimer::Rate)
        } else {
            (idle, BodyTimer::Idle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: BodyLimits = BodyLimits {
        idle: Duration::from_secs(10),
        min_rate: 100,
    };

    #[tokio::test(start_paused = true)]
    async fn idle_limit_moves_with_every_byte() {
        let t0 = Instant::now();
        let p = Pace::start(t0);
        assert_eq!(p.deadline(&L), (t0 + L.idle, BodyTimer::Idle));
        tokio::time::advance(Duration::from_secs(3)).await;
        let p = p.add(1000, Instant::now());
        // 1000 bytes at 100 B/s earned 10 s beyond the grace: idle is sooner.
        assert_eq!(
            p.deadline(&L),
            (t0 + Duration::from_secs(13), BodyTimer::Idle)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_hits_the_rate_limit() {
        let t0 = Instant::now();
        let mut p = Pace::start(t0);
        // One byte every 2 s never pauses 10 s...
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(2)).await;
            p = p.add(1, Instant::now());
        }
        // ...but 10 bytes earn only 100 ms beyond the 10 s grace.
        assert_eq!(
            p.deadline(&L),
            (t0 + Duration::from_millis(10_100), BodyTimer::Rate)
        );
        let off = BodyLimits { min_rate: 0, ..L };
        assert_eq!(p.deadline(&off).1, BodyTimer::Idle);
    }
}
