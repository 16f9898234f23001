//! One upstream server's live state: health, counters, idle connections.
//!
//! It outlives config reloads (reused by upstream name and address), so
//! health, counters and pooled connections survive a SIGHUP. Every field
//! is private and changes through one method each: the request path
//! ([`ServerState::begin`], [`ServerState::record`],
//! [`ServerState::record_failure`]), the prober
//! ([`ServerState::record_check`]), the pool and the operator
//! ([`ServerState::set_admin`], from `stackd ctl`) are the only writers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use super::health::{Active, Passive, PassivePolicy, Transition};
use super::pool::Pool;
use crate::worker::PerWorker;

/// Live state of one server; shared by every snapshot that lists it.
#[derive(Debug)]
pub(crate) struct ServerState {
    addr: SocketAddr,
    /// `ip:port` as text, to recognise the server in `Location` headers.
    authority: Box<str>,
    /// [`Passive`], packed.
    passive: AtomicU64,
    /// [`Active`]: bit 32 "up", low 32 bits the streak. Starts up.
    active: AtomicU64,
    /// Requests in flight, sent and failed, per worker (summed when read).
    counts: PerWorker<Counts>,
    /// Unix ms of the last active check << 1 | passed; 0: none yet.
    last_check: AtomicU64,
    /// [`AdminState`] as its discriminant.
    admin: AtomicU8,
    /// Why the server last failed: what `/status` and `stackd status` say
    /// of a server that is down, so that nobody has to search the logs.
    /// Written only on a failure, never on the request path's success.
    last_failure: Mutex<Option<Failure>>,
    pool: Pool,
}

/// A failed health check or request attempt, as `/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) unix_ms: u64,
    /// `"health check"` or `"request"`.
    pub(crate) by: &'static str,
    pub(crate) error: Box<str>,
}

/// What an operator decided with `stackd ctl` (HAProxy's `set server state
/// ready|drain|maint`). Kept across reloads, like the rest of the state; a
/// restart starts every server enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdminState {
    /// Takes traffic when healthy.
    Enable = 0,
    /// Takes no new request; what is in flight finishes. Still health-checked.
    Drain = 1,
    /// Takes no new request and is not health-checked (maintenance).
    Disable = 2,
}

/// What `/status` shows of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) in_flight: u64,
    pub(crate) requests: u64,
    pub(crate) failures: u64,
    pub(crate) idle: usize,
    /// (unix ms, passed) of the last active check.
    pub(crate) last_check: Option<(u64, bool)>,
}

const UP: u64 = 1 << 32;

/// One worker's request counters for a server.
#[derive(Debug, Default)]
struct Counts {
    /// Requests sent and not yet ended (signed: added to by +1 and -1).
    in_flight: AtomicI64,
    requests: AtomicU64,
    failures: AtomicU64,
}

// === impl AdminState ===

impl AdminState {
    /// The `stackd ctl` verb, also shown in `/status`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            AdminState::Enable => "enable",
            AdminState::Drain => "drain",
            AdminState::Disable => "disable",
        }
    }
}

// === impl ServerState ===

impl ServerState {
    pub(crate) fn new(addr: SocketAddr) -> ServerState {
        ServerState {
            addr,
            authority: addr.to_string().into_boxed_str(),
            passive: AtomicU64::new(0),
            active: AtomicU64::new(UP),
            counts: PerWorker::default(),
            last_check: AtomicU64::new(0),
            admin: AtomicU8::new(AdminState::Enable as u8),
            last_failure: Mutex::new(None),
            pool: Pool::default(),
        }
    }

    pub(crate) fn admin(&self) -> AdminState {
        match self.admin.load(Ordering::Relaxed) {
            0 => AdminState::Enable,
            1 => AdminState::Drain,
            _ => AdminState::Disable,
        }
    }

    /// Sets the operator's state; returns the previous one.
    pub(crate) fn set_admin(&self, state: AdminState) -> AdminState {
        match self.admin.swap(state as u8, Ordering::Relaxed) {
            0 => AdminState::Enable,
            1 => AdminState::Drain,
            _ => AdminState::Disable,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn passive(&self) -> Passive {
        Passive::unpack(self.passive.load(Ordering::Relaxed))
    }

    pub(crate) fn active(&self) -> Active {
        let v = self.active.load(Ordering::Relaxed);
        Active {
            up: v & UP != 0,
            streak: (v & u64::from(u32::MAX)) as u32,
        }
    }

    /// Requests in flight, for `least_conn`.
    pub(crate) fn in_flight(&self) -> u64 {
        let n: i64 = self
            .counts
            .all()
            .map(|c| c.in_flight.load(Ordering::Relaxed))
            .sum();
        u64::try_from(n).unwrap_or(0)
    }

    pub(crate) fn counters(&self) -> Counters {
        let last = self.last_check.load(Ordering::Relaxed);
        let sum = |f: fn(&Counts) -> &AtomicU64| -> u64 {
            self.counts
                .all()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum()
        };
        Counters {
            in_flight: self.in_flight(),
            requests: sum(|c| &c.requests),
            failures: sum(|c| &c.failures),
            idle: self.pool.idle(),
            last_check: (last > 0).then_some((last >> 1, last & 1 == 1)),
        }
    }

    /// Whether the operator and both health signals allow new requests;
    /// `now_ms` is read only when a recent failure makes time matter.
    pub(crate) fn usable(&self, p: &PassivePolicy, now_ms: impl FnOnce() -> u64) -> bool {
        self.admin() == AdminState::Enable && self.healthy(p, now_ms)
    }

    /// Whether both health signals allow traffic, whatever the operator set.
    pub(crate) fn healthy(&self, p: &PassivePolicy, now_ms: impl FnOnce() -> u64) -> bool {
        self.active().up
            && (p.max_fails == 0 || self.passive_clean() || p.available(self.passive(), now_ms()))
    }

    /// A request is sent to this server: counted, and in flight until the guard drops.
    pub(crate) fn begin(&self) -> InFlight<'_> {
        self.counts.add(|c| &c.requests, 1);
        self.counts.add(|c| &c.in_flight, 1);
        InFlight(self)
    }

    /// No failure counted against passive health since the last success.
    pub(crate) fn passive_clean(&self) -> bool {
        self.passive.load(Ordering::Relaxed) & 0xffff == 0
    }

    /// Applies a passive-health event with one CAS loop; returns the transition, if any.
    pub(crate) fn record(&self, p: &PassivePolicy, ok: bool, now_ms: u64) -> Option<Transition> {
        if ok {
            // Fast path: nothing to clear.
            if self.passive_clean() {
                return None;
            }
        } else {
            self.counts.add(|c| &c.failures, 1);
        }
        let mut cur = self.passive.load(Ordering::Relaxed);
        loop {
            let (next, t) = if ok {
                p.on_success(Passive::unpack(cur))
            } else {
                p.on_failure(Passive::unpack(cur), now_ms)
            };
            match self.passive.compare_exchange_weak(
                cur,
                next.pack(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return t,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The last failure of a check or request, if any.
    pub(crate) fn last_failure(&self) -> Option<Failure> {
        self.failure_slot().clone()
    }

    /// A request attempt failed with `error` (its passive-health verdict
    /// is [`ServerState::record`]'s).
    pub(crate) fn record_failure(&self, error: String, unix_ms: u64) {
        *self.failure_slot() = Some(Failure {
            unix_ms,
            by: "request",
            error: error.into_boxed_str(),
        });
    }

    fn failure_slot(&self) -> std::sync::MutexGuard<'_, Option<Failure>> {
        // Plain data: a panic while it was held cannot leave it half written.
        self.last_failure.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The prober's verdict at `unix_ms` (`failed`: why the check failed);
    /// only the prober calls this.
    pub(crate) fn record_check(
        &self,
        failed: Option<&str>,
        fall: u32,
        rise: u32,
        unix_ms: u64,
    ) -> Option<Transition> {
        let ok = failed.is_none();
        self.last_check
            .store((unix_ms << 1) | u64::from(ok), Ordering::Relaxed);
        if let Some(error) = failed {
            *self.failure_slot() = Some(Failure {
                unix_ms,
                by: "health check",
                error: error.into(),
            });
        }
        let (next, t) = self.active().observe(ok, fall, rise);
        let packed = if next.up { UP } else { 0 } | u64::from(next.streak);
        self.active.store(packed, Ordering::Relaxed);
        t
    }
}

/// Keeps a request counted in its server's in-flight number until dropped.
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a ServerState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.counts.add(|c| &c.in_flight, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_guard_and_active_checks() {
        let s = ServerState::new("192.0.2.1:80".parse().unwrap());
        let g = s.begin();
        assert_eq!((s.in_flight(), s.counters().requests), (1, 1));
        drop(g);
        assert_eq!(s.in_flight(), 0);
        let refused = || Some("connect: Connection refused");
        assert_eq!(s.record_check(refused(), 2, 2, 1000), None);
        assert_eq!(
            s.record_check(refused(), 2, 2, 2000),
            Some(Transition::Down)
        );
        assert!(!s.active().up);
        assert_eq!(s.counters().last_check, Some((2000, false)));
        s.record_check(None, 2, 2, 3000);
        assert_eq!(s.record_check(None, 2, 2, 4000), Some(Transition::Up));
        // The last failure stays on record after the server is back.
        let f = s.last_failure().unwrap();
        assert_eq!(
            (f.unix_ms, f.by, &*f.error),
            (2000, "health check", "connect: Connection refused")
        );
        s.record_failure("upstream timed out".to_owned(), 5000);
        assert_eq!(s.last_failure().unwrap().by, "request");
    }

    #[test]
    fn the_operator_takes_a_healthy_server_out_and_back() {
        let s = ServerState::new("192.0.2.1:80".parse().unwrap());
        let p = PassivePolicy {
            max_fails: 0,
            fail_timeout_ms: 0,
        };
        assert!(s.usable(&p, || 0));
        for (set, was) in [
            (AdminState::Drain, AdminState::Enable),
            (AdminState::Disable, AdminState::Drain),
        ] {
            assert_eq!(s.set_admin(set), was);
            assert!(!s.usable(&p, || 0), "{set:?} takes no new request");
            assert!(s.healthy(&p, || 0), "{set:?} is still healthy");
        }
        assert_eq!(s.set_admin(AdminState::Enable), AdminState::Disable);
        assert!(s.usable(&p, || 0));
    }
}
