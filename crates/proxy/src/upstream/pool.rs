//! Idle keep-alive connections per server, up to a cap (nginx `keepalive`),
//! one list per worker thread so a connection stays with the runtime that
//! registered its socket.
//!
//! The idle list is a mutex-guarded `Vec` held only for a push or a pop: a
//! few tens of nanoseconds, uncontended in practice.

use std::sync::Mutex;

use super::conn::UpstreamConn;

/// Idle connections to one server.
#[derive(Debug)]
pub(crate) struct Pool {
    shards: Box<[Mutex<Vec<UpstreamConn>>]>,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool {
            shards: (0..crate::worker::count())
                .map(|_| Mutex::default())
                .collect(),
        }
    }
}

// === impl Pool ===

impl Pool {
    fn shard(&self) -> Option<&Mutex<Vec<UpstreamConn>>> {
        self.shards
            .get(crate::worker::id() % self.shards.len().max(1))
    }

    /// An idle connection of this worker that is still open, if any.
    pub(crate) fn take(&self) -> Option<UpstreamConn> {
        loop {
            let mut c = self.shard()?.lock().ok()?.pop()?;
            if c.alive() {
                return Some(c);
            }
        }
    }

    /// Keeps a finished connection unless `cap` (per worker) are already idle.
    pub(crate) fn put(&self, c: UpstreamConn, cap: usize) {
        if cap == 0 {
            return;
        }
        if let Some(Ok(mut idle)) = self.shard().map(Mutex::lock) {
            if idle.len() < cap {
                idle.push(c);
            }
        }
    }

    /// Drops every idle connection (the server left the config).
    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            if let Ok(mut idle) = s.lock() {
                idle.clear();
            }
        }
    }

    pub(crate) fn idle(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|v| v.len()).unwrap_or(0))
            .sum()
    }
}
