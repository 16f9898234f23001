//! Getting a connection and running one bounded call on it: caching,
//! re-resolving the master after a failover, and classifying failures.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::{Backend, RedisStore};
use crate::store::StoreError;

/// A connection of either kind; cheap to clone (both are handles).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

// === impl RedisStore ===

impl RedisStore {
    /// The cached connection, or a new one (asking the sentinels if needed).
    async fn conn(&self) -> RedisResult<Conn> {
        if let Some(c) = self.cached().clone() {
            return Ok(c);
        }
        let c = match &self.backend {
            Backend::Single(client, config) => Conn::Single(
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
            ),
            Backend::Sentinel {
                sentinel,
                master,
                node,
                config,
                certs,
            } => {
                let mut client = sentinel
                    .lock()
                    .await
                    .async_master_for(master, Some(node))
                    .await?;
                if let Some(c) = certs {
                    client =
                        Client::build_with_tls(client.get_connection_info().clone(), c.clone())?;
                }
                Conn::Single(ConnectionManager::new_lazy_with_config(
                    client,
                    config.clone(),
                )?)
            }
            Backend::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
        };
        *self.cached() = Some(c.clone());
        Ok(c)
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<Conn>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a connection within the timeout, classifying failures.
    pub(crate) async fn run<T, Fut>(&self, f: impl FnOnce(Conn) -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempt = async { f(self.conn().await?).await };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let reconnect = e.is_io_error()
                    || e.is_connection_refusal()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || wrong_master(&e);
                if reconnect && !matches!(self.backend, Backend::Single(..)) {
                    // Ask the sentinels (or the cluster seeds) again next time.
                    *self.cached() = None;
                }
                Err(classify(e, self.timeout))
            }
            Err(_) => {
                if !matches!(self.backend, Backend::Single(..)) {
                    *self.cached() = None;
                }
                Err(StoreError::Timeout(self.timeout))
            }
        }
    }
}

/// Replies that mean "this server is no longer (or not yet) the writable master".
fn wrong_master(e: &RedisError) -> bool {
    matches!(
        e.code(),
        Some("READONLY" | "NOREPLICAS" | "MASTERDOWN" | "LOADING")
    )
}

fn classify(e: RedisError, timeout: Duration) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout(timeout)
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        StoreError::Unavailable(e.to_string())
    } else if wrong_master(&e) {
        StoreError::Unavailable(format!(
            "not the master any more (failover in progress): {e}"
        ))
    } else {
        StoreError::Command(e.to_string())
    }
}

// === impl Conn ===

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
