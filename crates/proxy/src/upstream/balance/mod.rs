//! Load-balancing policies: pure selection over one tier of servers.
//!
//! A policy never sees sockets or clocks. The caller describes the servers
//! through [`Candidates`] (weight, whether each may take a request right now,
//! active requests, node id) and the policy answers with an index or `None`
//! when no server qualifies — an empty pool is `None`, never a panic (sozu's
//! `% len` on an empty pool is the anti-example).
//!
//! The only state is a per-tier atomic cursor, so picking is lock-free on the
//! hot path: smooth weighted round robin is precomputed into a table at config
//! load (nginx's algorithm run for one full period) and the cursor walks it.
//!
//! # Layout
//! - [`smooth`]: nginx's smooth weighted round robin, as a table.
//! - [`hash`]: `ip_hash` by weighted rendezvous hashing.
//! - [`least_conn`]: fewest active requests per unit of weight.
//! - [`sticky`]: the session cookie's `.<node_id>` suffix.

pub(crate) mod hash;
pub(crate) mod least_conn;
pub(crate) mod smooth;
pub(crate) mod sticky;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) use stackd_common::config::proxy::Balance;

use crate::worker::PerWorker;

/// What a policy may know about the servers of one tier (primaries or backups).
pub(crate) trait Candidates {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Up (active and passive health) and not already tried for this request.
    fn usable(&self, i: usize) -> bool;
    fn weight(&self, i: usize) -> u32;
    /// Requests in flight on server `i` (for `least_conn`).
    fn active(&self, i: usize) -> u64;
    /// The server's node id, matched against the sticky cookie suffix.
    fn node_id(&self, i: usize) -> Option<&str>;
    /// A stable per-server key (hash of its address) for `ip_hash`.
    fn hash_key(&self, i: usize) -> u64;
}

/// What the request contributes to the choice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PickKey<'a> {
    /// The client address after `trusted_proxies` processing.
    pub(crate) client_ip: IpAddr,
    /// The node named by the sticky cookie, if any.
    pub(crate) sticky_node: Option<&'a str>,
}

/// One tier's policy plus its cursor. Built once per config snapshot.
#[derive(Debug)]
pub(crate) struct Balancer {
    policy: Balance,
    table: smooth::Table,
    /// Each worker walks the table with its own cursor (as each nginx
    /// worker keeps its own round-robin state): no cache line shared
    /// between cores per request, and every worker's share keeps the weights.
    cursor: PerWorker<AtomicUsize>,
}

// === impl Balancer ===

impl Balancer {
    /// `weights[i]` is server `i`'s weight; the table is built here, off the hot path.
    pub(crate) fn new(policy: Balance, weights: &[u32]) -> Balancer {
        Balancer {
            policy,
            table: smooth::Table::new(weights),
            cursor: PerWorker::default(),
        }
    }

    pub(crate) fn policy(&self) -> Balance {
        self.policy
    }

    /// Chooses a usable server, or `None` when there is none.
    pub(crate) fn pick<C: Candidates + ?Sized>(&self, c: &C, key: &PickKey<'_>) -> Option<usize> {
        if c.is_empty() {
            return None;
        }
        match self.policy {
            Balance::RoundRobin => self.table.pick(self.cursor.mine(), c),
            Balance::IpHash => hash::pick(c, key.client_ip),
            Balance::LeastConn => {
                let start = self.cursor.mine().fetch_add(1, Ordering::Relaxed);
                least_conn::pick(c, start)
            }
            Balance::Sticky => key
                .sticky_node
                .and_then(|node| sticky::pick(c, node))
                .or_else(|| self.table.pick(self.cursor.mine(), c)),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A plain in-memory tier for policy tests.
    use super::Candidates;

    #[derive(Clone, Debug, Default)]
    pub(crate) struct Srv {
        pub weight: u32,
        pub up: bool,
        pub active: u64,
        pub node: Option<&'static str>,
        pub key: u64,
    }

    pub(crate) fn srv(weight: u32) -> Srv {
        Srv {
            weight,
            up: true,
            ..Srv::default()
        }
    }

    pub(crate) fn tier(weights: &[u32]) -> Vec<Srv> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Srv {
                key: 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1),
                ..srv(w)
            })
            .collect()
    }

    impl Candidates for Vec<Srv> {
        fn len(&self) -> usize {
            <[Srv]>::len(self)
        }
        fn usable(&self, i: usize) -> bool {
            self[i].up
        }
        fn weight(&self, i: usize) -> u32 {
            self[i].weight
        }
        fn active(&self, i: usize) -> u64 {
            self[i].active
        }
        fn node_id(&self, i: usize) -> Option<&str> {
            self[i].node
        }
        fn hash_key(&self, i: usize) -> u64 {
            self[i].key
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn key() -> PickKey<'static> {
        PickKey {
            client_ip: "192.0.2.10".parse().unwrap(),
            sticky_node: None,
        }
    }

    #[test]
    fn every_policy_answers_none_on_empty_and_all_down() {
        for policy in [
            Balance::RoundRobin,
            Balance::IpHash,
            Balance::LeastConn,
            Balance::Sticky,
        ] {
            let b = Balancer::new(policy, &[]);
            assert_eq!(b.pick(&Vec::<Srv>::new(), &key()), None, "{policy:?} empty");
            let mut t = tier(&[1, 2, 3]);
            t.iter_mut().for_each(|s| s.up = false);
            let b = Balancer::new(policy, &[1, 2, 3]);
            assert_eq!(b.pick(&t, &key()), None, "{policy:?} all down");
        }
    }

    #[test]
    fn sticky_falls_back_to_round_robin() {
        let mut t = tier(&[1, 1]);
        t[0].node = Some("137server1");
        t[1].node = Some("139server2");
        let b = Balancer::new(Balance::Sticky, &[1, 1]);
        let k = PickKey {
            sticky_node: Some("139server2"),
            ..key()
        };
        assert!((0..10).all(|_| b.pick(&t, &k) == Some(1)));
        t[1].up = false;
        assert!((0..10).all(|_| b.pick(&t, &k) == Some(0)));
        let unknown = PickKey {
            sticky_node: Some("nope"),
            ..key()
        };
        t[1].up = true;
        let picks: Vec<_> = (0..4).map(|_| b.pick(&t, &unknown).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 2, "{picks:?}");
    }
}
