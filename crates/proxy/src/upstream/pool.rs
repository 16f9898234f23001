//! Idle keep-alive connections per server (nginx `keepalive`), one list per
//! worker thread so a connection stays with the runtime that registered its
//! socket, each list on its own cache line.
//!
//! The list is sized by demand: a finished connection goes back unless
//! `cap` are already idle (`upstream_keepalive`; `auto` = `max_connections`),
//! so 1,000 concurrent clients reuse their upstream connections instead of
//! closing and reopening one per request. Connections unused for
//! `upstream_keepalive_timeout`, and those the server closed, are closed by
//! [`reap`], once a second; the hot path reads no clock for it, only the
//! reaper's tick.
//!
//! Taking is last in, first out: the connection used most recently is the
//! one most likely still open, and the ones at the bottom are the ones that
//! age out when demand falls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::conn::UpstreamConn;
use crate::snapshot::Snapshot;
use crate::worker::PerWorker;

/// Seconds on the process's monotonic clock (`clock::now_ms`), as [`reap`]
/// last saw it: the idle stamp of pooled connections.
static TICK: AtomicU64 = AtomicU64::new(0);

/// An idle connection and the tick it went idle at.
type Idle = (u64, UpstreamConn);

/// Idle connections to one server.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    shards: PerWorker<Mutex<VecDeque<Idle>>>,
}

// === impl Pool ===

impl Pool {
    /// An idle connection of this worker that is still open, if any.
    pub(crate) fn take(&self) -> Option<UpstreamConn> {
        let mut idle = self.shards.mine().lock().ok()?;
        while let Some((_, mut c)) = idle.pop_back() {
            if c.alive() {
                return Some(c);
            }
        }
        None
    }

    /// Keeps a finished connection unless `cap` (per worker) are already idle.
    pub(crate) fn put(&self, c: UpstreamConn, cap: usize) {
        if cap == 0 {
            return;
        }
        if let Ok(mut idle) = self.shards.mine().lock() {
            if idle.len() < cap {
                idle.push_back((TICK.load(Ordering::Relaxed), c));
            }
        }
    }

    /// Closes, in every worker's list, the connections idle for `timeout`
    /// or longer and those the server has closed since (nginx closes these
    /// at once): a backend that stopped leaves no sockets in CLOSE_WAIT,
    /// and `/status` no idle connections to it.
    fn expire(&self, now: u64, timeout: u64) {
        for s in self.shards.all() {
            if let Ok(mut idle) = s.lock() {
                idle.retain_mut(|(at, c)| now.saturating_sub(*at) < timeout && c.alive());
            }
        }
    }

    /// Drops every idle connection (the server left the config).
    pub(crate) fn clear(&self) {
        for s in self.shards.all() {
            if let Ok(mut idle) = s.lock() {
                idle.clear();
            }
        }
    }

    pub(crate) fn idle(&self) -> usize {
        self.shards
            .all()
            .map(|s| s.lock().map(|v| v.len()).unwrap_or(0))
            .sum()
    }
}

/// Once a second, advances the tick and closes the connections of every
/// server of the running config that were idle for `upstream_keepalive_timeout`.
/// Ends when the server that owns `shared` is gone.
pub(crate) async fn reap(shared: Weak<ArcSwap<Snapshot>>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = crate::clock::now_ms() / 1000;
        TICK.fetch_max(now, Ordering::Relaxed);
        let snap = shared.load();
        let timeout = snap.limits.upstream_keepalive_timeout.as_secs().max(1);
        for s in snap.upstreams.iter().flat_map(|u| u.all()) {
            s.state.pool().expire(now, timeout);
        }
        drop(snap);
        drop::<Arc<_>>(shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A pool given three connections, each with `cap`; the server's
    /// listener, and its ends of the three.
    async fn three_put(cap: usize) -> (Pool, TcpListener, Vec<TcpStream>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let pool = Pool::default();
        let mut servers = Vec::new();
        for _ in 0..3 {
            let c = UpstreamConn::connect(addr, Duration::from_secs(5))
                .await
                .unwrap();
            servers.push(l.accept().await.unwrap().0);
            pool.put(c, cap);
        }
        (pool, l, servers)
    }

    #[tokio::test]
    async fn capped_last_in_first_out_and_aged_out() {
        let (pool, l, mut servers) = three_put(2).await;
        let addr = l.local_addr().unwrap();
        assert_eq!(pool.idle(), 2, "the third is over the cap and closed");
        // The server closes the newest idle connection: take skips it.
        drop(servers.pop());
        drop(servers.pop());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.take().is_some(), "the older one is still open");
        assert_eq!(pool.idle(), 0);

        let c = UpstreamConn::connect(addr, Duration::from_secs(5))
            .await
            .unwrap();
        pool.put(c, 2);
        let base = TICK.load(Ordering::Relaxed);
        pool.expire(base + 10, 60);
        assert_eq!(pool.idle(), 1, "not idle long enough");
        pool.expire(base + 1000, 60);
        assert_eq!(pool.idle(), 0, "idle past the timeout");
        pool.put(
            UpstreamConn::connect(addr, Duration::from_secs(5))
                .await
                .unwrap(),
            0,
        );
        assert_eq!(pool.idle(), 0, "upstream_keepalive = 0 keeps none");
    }

    #[tokio::test]
    async fn connections_the_server_closed_are_reaped_before_their_time() {
        let (pool, _l, mut servers) = three_put(8).await;
        // The server closes the oldest and the newest.
        drop(servers.remove(0));
        drop(servers.pop());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let base = TICK.load(Ordering::Relaxed);
        pool.expire(base, 60);
        assert_eq!(pool.idle(), 1, "only the one still open is kept");
        assert!(pool.take().is_some());
    }
}
