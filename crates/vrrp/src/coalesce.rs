//! Which state changes become notifications, pure: no clock, no tasks.
//!
//! Every transition used to start the notify script, the webhook and the
//! mail. A stream of forged adverts flips the state twice per packet pair,
//! so that was a fork bomb and a mail storm on demand. Now:
//!
//! - a state is announced only once it has **lasted** `settle` (a flap that
//!   returns within it announces nothing);
//! - two announcements are at least `min_gap` apart (the rate is bounded
//!   whatever the input);
//! - the state announced is always the **latest** one, and a state equal to
//!   the last announced one is not announced again;
//! - every transition that was not announced is **counted**;
//! - the final STOP skips the wait: it is announced at once ([`Coalescer::stop`]).
//!
//! ```text
//!  transitions  B   M  B  M  B  M ............................ M
//!  announced    B(after settle)       M(after min_gap, it lasted)
//! ```

use std::time::Duration;

/// What [`Coalescer::poll`] says to do at some instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poll<T> {
    /// Announce this now.
    Deliver(T),
    /// Look again at this instant.
    Wait(Duration),
    /// Nothing pending.
    Idle,
}

/// Coalesces one instance's transitions; `T` is the notice, `K` what makes
/// two notices "the same state" (its key).
#[derive(Clone, Debug)]
pub struct Coalescer<T, K> {
    settle: Duration,
    min_gap: Duration,
    key: fn(&T) -> K,
    /// The last announced state and when.
    sent: Option<(K, Duration)>,
    /// The latest transition not announced yet, and since when.
    pending: Option<(T, Duration)>,
    coalesced: u64,
}

// === impl Coalescer ===

impl<T, K: PartialEq + Copy> Coalescer<T, K> {
    pub fn new(settle: Duration, min_gap: Duration, key: fn(&T) -> K) -> Self {
        Coalescer {
            settle,
            min_gap,
            key,
            sent: None,
            pending: None,
            coalesced: 0,
        }
    }

    /// A transition at `now` (monotonic). Returns when to poll.
    pub fn observe(&mut self, notice: T, now: Duration) -> Duration {
        if self.pending.replace((notice, now)).is_some() {
            self.coalesced += 1;
        }
        self.due().unwrap_or(now)
    }

    /// `skipped` transitions were never even observed (the driver overwrote
    /// them before the notifier looked): they count as coalesced.
    pub fn skipped(&mut self, skipped: u64) {
        self.coalesced += skipped;
    }

    /// What to do at `now`.
    pub fn poll(&mut self, now: Duration) -> Poll<T> {
        let Some(due) = self.due() else {
            return Poll::Idle;
        };
        if now < due {
            return Poll::Wait(due);
        }
        let Some((notice, _)) = self.pending.take() else {
            return Poll::Idle;
        };
        let key = (self.key)(&notice);
        if self.sent.is_some_and(|(k, _)| k == key) {
            // It flapped back to what was announced last: nothing lasted.
            self.coalesced += 1;
            return Poll::Idle;
        }
        self.sent = Some((key, now));
        Poll::Deliver(notice)
    }

    /// The final notice (STOP): announced at once, replacing anything
    /// pending; `None` if it was announced already.
    pub fn stop(&mut self, notice: T, now: Duration) -> Option<T> {
        let key = (self.key)(&notice);
        if let Some((p, _)) = self.pending.take() {
            if (self.key)(&p) != key {
                self.coalesced += 1;
            }
        }
        if self.sent.is_some_and(|(k, _)| k == key) {
            return None;
        }
        self.sent = Some((key, now));
        Some(notice)
    }

    /// Transitions that were not announced, so far.
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    fn due(&self) -> Option<Duration> {
        let (_, since) = self.pending.as_ref()?;
        let lasted = *since + self.settle;
        Some(match self.sent {
            Some((_, at)) => lasted.max(at + self.min_gap),
            None => lasted,
        })
    }
}
