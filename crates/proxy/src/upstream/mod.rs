//! Upstreams: servers with their live state, the balancer that picks among
//! them, and the connections to them.
//!
//! # Layout
//! - [`server`]: one server's live state behind methods ([`ServerState`]).
//! - [`conn`]: an HTTP/1.1 connection driven inline, and the [`conn::Lease`]
//!   that alone may return it to the [`pool`].
//! - [`balance`], [`health`]: pure policies and hysteresis.
//! - [`prober`]: active health checks feeding [`health`].

pub(crate) mod balance;
pub(crate) mod conn;
pub(crate) mod health;
pub(crate) mod pool;
pub(crate) mod prober;
pub(crate) mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use stackd_common::config::proxy::{HealthCheck, Upstream};

use crate::observe::stats::UpstreamStats;
use balance::{hash::fnv1a, Balancer, Candidates, PickKey};
use health::PassivePolicy;
pub(crate) use server::ServerState;

/// A server as configured in one snapshot.
#[derive(Debug)]
pub(crate) struct ServerRt {
    pub(crate) state: Arc<ServerState>,
    pub(crate) weight: u32,
    pub(crate) backup: bool,
    pub(crate) node_id: Option<Box<str>>,
    key: u64,
}

/// One `[[proxy.upstream]]` in a snapshot.
#[derive(Debug)]
pub(crate) struct UpstreamRt {
    pub(crate) name: Arc<str>,
    pub(crate) primaries: Vec<ServerRt>,
    pub(crate) backups: Vec<ServerRt>,
    primary_lb: Balancer,
    backup_lb: Balancer,
    pub(crate) passive: PassivePolicy,
    pub(crate) sticky_cookie: Box<str>,
    /// Servers tried per request at most.
    pub(crate) tries: usize,
    pub(crate) next_upstream_timeout: std::time::Duration,
    pub(crate) health: Option<HealthCheck>,
    pub(crate) stats: Arc<UpstreamStats>,
}

/// The servers of one tier as the balancer sees them at one instant.
struct Tier<'a> {
    servers: &'a [ServerRt],
    passive: &'a PassivePolicy,
    /// Read once, and only if a server has failures to weigh against it.
    now_ms: &'a LazyNow<'a>,
    tried: u64,
    offset: usize,
}

/// The clock, read at most once per pick.
struct LazyNow<'a> {
    clock: &'a dyn Fn() -> u64,
    at: std::cell::OnceCell<u64>,
}

impl LazyNow<'_> {
    fn get(&self) -> u64 {
        *self.at.get_or_init(self.clock)
    }
}

impl Candidates for Tier<'_> {
    fn len(&self) -> usize {
        self.servers.len()
    }
    fn usable(&self, i: usize) -> bool {
        let bit = i + self.offset;
        let s = &self.servers[i].state;
        (bit >= 64 || self.tried & (1 << bit) == 0) && s.usable(self.passive, || self.now_ms.get())
    }
    fn weight(&self, i: usize) -> u32 {
        self.servers[i].weight
    }
    fn active(&self, i: usize) -> u64 {
        self.servers[i].state.in_flight()
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
    pub(crate) fn new(
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
    /// backups only when no primary is usable. Returns the bit index and the
    /// server. `now_ms` is called only when a server's failures need weighing.
    pub(crate) fn pick(
        &self,
        key: &PickKey<'_>,
        tried: u64,
        now_ms: impl Fn() -> u64,
    ) -> Option<(usize, &ServerRt)> {
        let now_ms = LazyNow {
            clock: &now_ms,
            at: std::cell::OnceCell::new(),
        };
        let p = Tier {
            servers: &self.primaries,
            passive: &self.passive,
            now_ms: &now_ms,
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

    pub(crate) fn policy(&self) -> balance::Balance {
        self.primary_lb.policy()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &ServerRt> {
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
            let (i, _) = u.pick(&key(), 0, || 0).unwrap();
            assert!(i < 2);
        }
        u.primaries[0].state.record(&u.passive, false, 0);
        u.primaries[1].state.record(&u.passive, false, 0);
        let (i, s) = u.pick(&key(), 0, || 1).unwrap();
        assert_eq!((i, s.backup), (2, true));
        // After fail_timeout the primaries are tried again.
        let (i, _) = u.pick(&key(), 0, || 10_001).unwrap();
        assert!(i < 2);
    }

    #[test]
    fn tried_servers_are_excluded_then_none() {
        let u = upstream(
            Balance::LeastConn,
            &[("192.0.2.1:80", 1, false), ("192.0.2.2:80", 1, false)],
        );
        let (a, _) = u.pick(&key(), 0, || 0).unwrap();
        let (b, _) = u.pick(&key(), 1 << a, || 0).unwrap();
        assert_ne!(a, b);
        assert!(u.pick(&key(), 0b11, || 0).is_none());
    }

    #[test]
    fn drained_and_disabled_servers_get_no_new_request_however_healthy() {
        use crate::upstream::server::AdminState;
        for policy in [Balance::RoundRobin, Balance::LeastConn, Balance::IpHash] {
            let u = upstream(
                policy,
                &[("192.0.2.1:80", 1, false), ("192.0.2.2:80", 1, false)],
            );
            for set in [AdminState::Drain, AdminState::Disable] {
                u.primaries[0].state.set_admin(set);
                for _ in 0..4 {
                    let (i, _) = u.pick(&key(), 0, || 0).unwrap();
                    assert_eq!(
                        i, 1,
                        "{policy:?}, {set:?}: a clean passive record is not enough"
                    );
                }
            }
            u.primaries[0].state.set_admin(AdminState::Enable);
            assert!(
                (0..4).any(|_| u.pick(&key(), 0, || 0).unwrap().0 == 0)
                    || policy == Balance::IpHash
            );
        }
    }
}
