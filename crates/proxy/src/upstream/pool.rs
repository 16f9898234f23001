//! Upstream connections: connect with a timeout, and keep idle keep-alive
//! connections per server up to a cap (nginx `keepalive`).
//!
//! We drive hyper's HTTP/1.1 client connection ourselves instead of using a
//! pooled client, because retries need the request back when nothing was
//! sent (`try_send_request` returns it) and the pool must be per server.
//! The idle list is a mutex-guarded `Vec` held only for a push or a pop: a
//! few tens of nanoseconds, uncontended in practice.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::ReqBody;
use crate::error::{ErrorKind, ProxyError};

/// A ready-to-use HTTP/1.1 connection to one upstream server.
pub type Conn = SendRequest<ReqBody>;

/// Idle connections to one server, one list per worker thread.
#[derive(Debug)]
pub struct Pool {
    shards: Box<[Mutex<Vec<Conn>>]>,
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
    fn shard(&self) -> Option<&Mutex<Vec<Conn>>> {
        self.shards
            .get(crate::worker::id() % self.shards.len().max(1))
    }

    /// An idle connection of this worker that is still open, if any.
    pub fn take(&self) -> Option<Conn> {
        let mut idle = self.shard()?.lock().ok()?;
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    /// Returns a connection after its response finished; dropped when `cap`
    /// (per worker) are already idle.
    pub fn put(&self, c: Conn, cap: usize) {
        if c.is_closed() || cap == 0 {
            return;
        }
        if let Some(Ok(mut idle)) = self.shard().map(Mutex::lock) {
            if idle.len() < cap {
                idle.push(c);
            }
        }
    }

    /// Drops every idle connection (the server left the config).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            if let Ok(mut idle) = s.lock() {
                idle.clear();
            }
        }
    }

    pub fn idle(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|v| v.len()).unwrap_or(0))
            .sum()
    }
}

/// Opens a new connection to `addr` within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ProxyError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ProxyError::upstream(ErrorKind::ConnectTimeout)),
        Ok(Err(e)) => return Err(ProxyError::upstream(ErrorKind::Connect(e))),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProxyError::upstream(ErrorKind::Upstream(e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(upstream = %addr, error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}
