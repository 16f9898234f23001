//! Runtime upstreams: servers with their live counters, health and idle
//! connections, and the balancer that picks among them.
//!
//! [`ServerState`] outlives config reloads (it is reused by upstream name and
//! address), so health, counters and pooled connections survive a SIGHUP.
//! Everything a request touches here is an atomic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use stackd_common::config::proxy::{HealthCheck, Upstream};

use crate::balance::{hash::fnv1a, Balancer, Candidates, PickKey};
use crate::health::{Passive, PassivePolicy, Transition};
use crate::pool::Pool;
use crate::stats::UpstreamStats;

/// Live state of one server; shared by every snapshot that lists it.
#[derive(Debug)]
pub struct ServerState {
    pub addr: SocketAddr,
    /// `ip:port` as text, to recognise the server in `Location` headers.
    pub authority: Box<str>,
    passive: AtomicU64,
    /// Active health verdict (true until a check says otherwise).
    pub active_up: AtomicBool,
    /// Packed [`crate::health::Active`] streak, owned by the prober.
    pub active_streak: AtomicU64,
    pub in_flight: AtomicU64,
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    /// Unix ms of the last active check, 0 if none; and whether it passed.
    pub last_check_unix_ms: AtomicU64,
    pub last_check_ok: AtomicBool,
    pub pool: Pool,
}

/// A server as configured in one snapshot.
#[derive(Debug)]
pub struct ServerRt {
    pub state: Arc<ServerState>,
    pub weight: u32,
    pub backup: bool,
    pub node_id: Option<Box<str>>,
    key: u64,
}

/// One `[[proxy.upstream]]` in a snapshot.
#[derive(Debug)]
pub struct UpstreamRt {
    pub name: Arc<str>,
    pub primaries: Vec<ServerRt>,
    pub backups: Vec<ServerRt>,
    primary_lb: Balancer,
    backup_lb: Balancer,
    pub passive: PassivePolicy,
    pub sticky_cookie: Box<str>,
    /// Servers tried per request at most.
    pub tries: usize,
    pub next_upstream_timeout: std::time::Duration,
    pub health: Option<HealthCheck>,
    pub stats: Arc<UpstreamStats>,
}

// === impl ServerState ===

impl ServerState {
    pub fn new(addr: SocketAddr) -> ServerState {
        ServerState {
            addr,
            authority: addr.to_string().into_boxed_str(),
            passive: AtomicU64::new(0),
            active_up: AtomicBool::new(true),
            active_streak: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_check_unix_ms: AtomicU64::new(0),
            last_check_ok: AtomicBool::new(false),
            pool: Pool::default(),
        }
    }

    pub fn passive(&self) -> Passive {
        Passive::unpack(self.passive.load(Ordering::Relaxed))
    }

    /// Whether both health signals allow traffic at `now_ms`.
    pub fn usable(&self, p: &PassivePolicy, now_ms: u64) -> bool {
        self.active_up.load(Ordering::Relaxed)
            && (p.max_fails == 0 || p.available(self.passive(), now_ms))
    }

    /// Applies a passive-health event with one CAS loop; returns the transition, if any.
    pub fn record(&self, p: &PassivePolicy, ok: bool, now_ms: u64) -> Option<Transition> {
        if ok {
            // Fast path: nothing to clear.
            if self.passive.load(Ordering::Relaxed) & 0xffff == 0 {
                return None;
            }
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
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
}

/// The servers of one tier as the balancer sees them at one instant.
struct Tier<'a> {
    servers: &'a [ServerRt],
    passive: &'a PassivePolicy,
    now_ms: u64,
    tried: u64,
    offset: usize,
}

impl Candidates for Tier<'_> {
    fn len(&self) -> usize {
        self.servers.len()
    }
    fn usable(&self, i: usize) -> bool {
        let bit = i + self.offset;
        (bit >= 64 || self.tried & (1 << bit) == 0)
            && self.servers[i].state.usable(self.passive, self.now_ms)
    }
    fn weight(&self, i: usize) -> u32 {
        self.servers[i].weight
    }
    fn active(&self, i: usize) -> u64 {
        self.servers[i].state.in_flight.load(Ordering::Relaxed)
    }
    fn node_id(&self, i: usize) -> Option<&str> {
        self.servers[i].node_id.as_deref()
    }
    fn hash_key(&self, i: usize) -> u64 {
        self.servers[i].key
    }
}

// === impl UpstreamRt ===

impl UpstreamRt {
    /// Builds the runtime form; `state_for` returns the (possibly reused) live state of an address.
    pub fn new(
        u: &Upstream,
        stats: Arc<UpstreamStats>,
        mut state_for: impl FnMut(SocketAddr) -> Arc<ServerState>,
    ) -> UpstreamRt {
        let mut primaries = Vec::new();
        let mut backups = Vec::new();
        for s in &u.servers {
            let rt = ServerRt {
                state: state_for(s.addr),
                weight: s.weight.max(1),
                backup: s.backup,
                node_id: s.node_id.as_deref().map(Into::into),
                key: fnv1a(s.addr.to_string().as_bytes()),
            };
            if s.backup {
                backups.push(rt);
            } else {
                primaries.push(rt);
            }
        }
        let weights = |v: &[ServerRt]| v.iter().map(|s| s.weight).collect::<Vec<_>>();
        let total = primaries.len() + backups.len();
        UpstreamRt {
            name: u.name.as_str().into(),
            primary_lb: Balancer::new(u.balance, &weights(&primaries)),
            backup_lb: Balancer::new(u.balance, &weights(&backups)),
            primaries,
            backups,
            passive: PassivePolicy {
                max_fails: u.max_fails,
                fail_timeout_ms: u64::try_from(u.fail_timeout.as_millis()).unwrap_or(u64::MAX),
            },
            sticky_cookie: u.sticky_cookie.as_str().into(),
            tries: match u.next_upstream_tries as usize {
                0 => total,
                n => n.min(total),
            }
            .max(1),
            next_upstream_timeout: u.next_upstream_timeout,
            health: u.health.clone(),
            stats,
        }
    }

    /// Picks a server not in `tried` (bit i = i-th server, primaries then backups);
    /// backups only when no primary is usable. Returns the bit index and the server.
    pub fn pick(&self, key: &PickKey<'_>, tried: u64, now_ms: u64) -> Option<(usize, &ServerRt)> {
        let p = Tier {
            servers: &self.primaries,
            passive: &self.passive,
            now_ms,
            tried,
            offset: 0,
        };
        if let Some(i) = self.primary_lb.pick(&p, key) {
            return Some((i, &self.primaries[i]));
        }
        let b = Tier {
            servers: &self.backups,
            offset: self.primaries.len(),
            ..p
        };
        self.backup_lb
            .pick(&b, key)
            .map(|i| (i + self.primaries.len(), &self.backups[i]))
    }

    pub fn policy(&self) -> crate::balance::Balance {
        self.primary_lb.policy()
    }

    pub fn all(&self) -> impl Iterator<Item = &ServerRt> {
        self.primaries.iter().chain(&self.backups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackd_common::config::proxy::{Balance, Server};

    fn upstream(balance: Balance, servers: &[(&str, u32, bool)]) -> UpstreamRt {
        let u = Upstream {
            name: "u".into(),
            balance,
            servers: servers
                .iter()
                .map(|(a, w, b)| Server {
                    addr: a.parse().unwrap(),
                    weight: *w,
                    backup: *b,
                    node_id: None,
                })
                .collect(),
            max_fails: 1,
            fail_timeout: std::time::Duration::from_secs(10),
            health: None,
            sticky_cookie: "SESSIONID".into(),
            next_upstream_tries: 0,
            next_upstream_timeout: std::time::Duration::ZERO,
        };
        UpstreamRt::new(&u, Arc::default(), |a| Arc::new(ServerState::new(a)))
    }

    fn key() -> PickKey<'static> {
        PickKey {
            client_ip: "192.0.2.1".parse().unwrap(),
            sticky_node: None,
        }
    }

    #[test]
    fn backups_only_when_primaries_are_down() {
        let u = upstream(
            Balance::RoundRobin,
            &[
                ("192.0.2.1:80", 1, false),
                ("192.0.2.2:80", 1, false),
                ("192.0.2.3:80", 1, true),
            ],
        );
        for _ in 0..10 {
            let (i, _) = u.pick(&key(), 0, 0).unwrap();
            assert!(i < 2);
        }
        u.primaries[0].state.record(&u.passive, false, 0);
        u.primaries[1].state.record(&u.passive, false, 0);
        let (i, s) = u.pick(&key(), 0, 1).unwrap();
        assert_eq!((i, s.backup), (2, true));
        // After fail_timeout the primaries are tried again.
        let (i, _) = u.pick(&key(), 0, 10_001).unwrap();
        assert!(i < 2);
    }

    #[test]
    fn tried_servers_are_excluded_then_none() {
        let u = upstream(
            Balance::LeastConn,
            &[("192.0.2.1:80", 1, false), ("192.0.2.2:80", 1, false)],
        );
        let (a, _) = u.pick(&key(), 0, 0).unwrap();
        let (b, _) = u.pick(&key(), 1 << a, 0).unwrap();
        assert_ne!(a, b);
        assert!(u.pick(&key(), 0b11, 0).is_none());
    }
}
