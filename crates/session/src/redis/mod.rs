//! [`RedisStore`]: sessions as Redis hashes `<prefix><id>`, with every call
//! bounded by `redis_timeout` and every connection re-established by itself.
//!
//! - `redis://` / `rediss://`: one [`redis::aio::ConnectionManager`], which reconnects in
//!   the background after Redis restarts.
//! - Sentinel: the master is asked of the sentinels on first use and again
//!   after any connection error or `READONLY` reply (the old master was
//!   demoted), so a failover costs the requests in flight, not the sessions.
//! - Cluster: the redis crate's cluster client follows slots and MOVED. A
//!   rotation cannot rename across slots, so it takes the old hash (one
//!   script: read + delete, atomic) and then writes the new one; a crash between the
//!   two steps loses that one session (the user logs in again), it never
//!   leaves two copies.
//!
//! Sentinel replicates asynchronously: a write acknowledged by the old
//! master after the replica was promoted, but before the sentinels demoted
//! it, is lost in the resync (tested in `tests/sentinel.rs`). Setting
//! `min-replicas-to-write 1` on the Redis servers closes most of that window;
//! the store treats the resulting `NOREPLICAS` like `READONLY` (ask again).
//!
//! Nothing connects when the store is built: a backend can start while Redis
//! is down and answers 503 until it is back.

mod scripts;
pub(crate) mod url;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use redis::aio::ConnectionManagerConfig;
use redis::cluster::ClusterClient;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    Client, ConnectionInfo, IntoConnectionInfo, RedisError, Script, TlsCertificates, TlsMode,
};
use stackd_common::config::DemoBackendConfig;

use crate::memory::MemoryStore;
use crate::store::{SessionStore, StoreError};
use stackd_common::config::{redact_url as redact, Secret};
use url::{Target, UrlError};

/// Why a store could not be built from its URL (nothing is connected yet, so
/// this is always a configuration problem).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("{url}: {reason}")]
    Client { url: String, reason: String },
}

/// Sessions in Redis (standalone, Sentinel or Cluster).
pub struct RedisStore {
    backend: Backend,
    prefix: String,
    timeout: Duration,
    name: String,
    conn: Mutex<Option<Conn>>,
    write: Script,
    load: Script,
    take: Script,
}

enum Backend {
    Single(Client, ConnectionManagerConfig),
    Sentinel {
        sentinel: tokio::sync::Mutex<Sentinel>,
        master: String,
        node: SentinelNodeConnectionInfo,
        config: ConnectionManagerConfig,
        /// The private CA, re-applied to the master client the sentinels name.
        certs: Option<TlsCertificates>,
    },
    Cluster(ClusterClient),
}

/// How to reach the store besides its URL.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Prefix of every session key (`[demo_backend] key_prefix`).
    pub key_prefix: String,
    /// Bound on every store call (`[demo_backend] redis_timeout`).
    pub timeout: Duration,
    /// PEM CA for `rediss://` servers signed by a private CA.
    pub ca_file: Option<PathBuf>,
    /// File holding the password of the data nodes (`redis_password_file`),
    /// read once when the store is built.
    pub password_file: Option<PathBuf>,
    /// `memory://` only: most sessions kept.
    pub memory_max_sessions: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        let d = DemoBackendConfig::with_defaults("n", "memory://", ([127, 0, 0, 1], 0).into());
        StoreOptions::from(&d)
    }
}

impl From<&DemoBackendConfig> for StoreOptions {
    fn from(c: &DemoBackendConfig) -> Self {
        StoreOptions {
            key_prefix: c.key_prefix.clone(),
            timeout: c.redis_timeout,
            ca_file: c.redis_ca_file.clone(),
            password_file: c.redis_password_file.clone(),
            memory_max_sessions: c.memory_max_sessions,
        }
    }
}

/// Builds the store a `[demo_backend] redis` URL names; `memory://` gives a
/// [`MemoryStore`] (a new, empty one per call: share the `Arc` to share
/// sessions). Connects lazily, so it succeeds while Redis is down.
pub fn open_store(
    url: &str,
    key_prefix: &str,
    timeout: Duration,
) -> Result<Arc<dyn SessionStore>, OpenError> {
    let opts = StoreOptions {
        key_prefix: key_prefix.into(),
        timeout,
        ..StoreOptions::default()
    };
    open_store_with(url, &opts)
}

/// [`open_store`] with every option (a private CA for TLS).
pub fn open_store_with(url: &str, opts: &StoreOptions) -> Result<Arc<dyn SessionStore>, OpenError> {
    match Target::parse(url)? {
        Target::Memory => Ok(Arc::new(MemoryStore::with_capacity(
            opts.memory_max_sessions,
        ))),
        target => Ok(Arc::new(RedisStore::from_target(url, target, opts)?)),
    }
}

// === impl RedisStore ===

impl RedisStore {
    /// A Redis store for `url` (any scheme but `memory://`).
    pub fn open(url: &str, opts: &StoreOptions) -> Result<RedisStore, OpenError> {
        match Target::parse(url)? {
            Target::Memory => Err(OpenError::Client {
                url: url.into(),
                reason: "memory:// is not Redis; use open_store".into(),
            }),
            target => RedisStore::from_target(url, target, opts),
        }
    }

    fn from_target(
        url: &str,
        target: Target,
        opts: &StoreOptions,
    ) -> Result<RedisStore, OpenError> {
        let err = |e: RedisError| OpenError::Client {
            url: redact(url),
            reason: e.to_string(),
        };
        let timeout = opts.timeout;
        if url.starts_with("rediss") {
            // rustls needs a process-wide crypto provider; pick ring (the one the
            // workspace builds) unless the process already chose one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let certs = match &opts.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| OpenError::Client {
                    url: redact(url),
                    reason: format!("cannot read redis_ca_file {}: {e}", path.display()),
                })?;
                Some(TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                })
            }
        };
        let password = match &opts.password_file {
            None => None,
            Some(path) => Some(
                stackd_common::config::secret::read_secret_file(path).map_err(|reason| {
                    OpenError::Client {
                        url: redact(url),
                        reason: format!("redis_password_file: {reason}"),
                    }
                })?,
            ),
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let backend = match target {
            Target::Memory | Target::Single(_) => {
                let info = with_password(url.into_connection_info().map_err(err)?, &password);
                let client = match &certs {
                    Some(c) => Client::build_with_tls(info, c.clone()),
                    None => Client::open(info),
                };
                Backend::Single(client.map_err(err)?, config)
            }
            Target::Sentinel {
                sentinels,
                master,
                node,
                tls,
            } => {
                let info = with_password(
                    node.as_str().into_connection_info().map_err(err)?,
                    &password,
                );
                let mut node = SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(info.redis_settings().clone());
                if tls {
                    node = node.set_tls_mode(TlsMode::Secure);
                }
                let sentinel = Sentinel::build(sentinels).map_err(err)?;
                Backend::Sentinel {
                    sentinel: tokio::sync::Mutex::new(sentinel),
                    master,
                    node,
                    config,
                    certs,
                }
            }
            Target::Cluster(nodes) => {
                let mut b = ClusterClient::builder(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1);
                if let Some(c) = certs {
                    b = b.certs(c);
                }
                if let Some(p) = &password {
                    b = b.password(p.expose());
                }
                Backend::Cluster(b.build().map_err(err)?)
            }
        };
        Ok(RedisStore {
            backend,
            prefix: opts.key_prefix.clone(),
            timeout,
            name: redact(url),
            conn: Mutex::new(None),
            write: Script::new(scripts::WRITE),
            load: Script::new(scripts::LOAD),
            take: Script::new(scripts::TAKE),
        })
    }

    pub(crate) fn key(&self, id: &crate::SessionId) -> String {
        format!("{}{}", self.prefix, id.as_str())
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }
}

/// `info` with the password from `redis_password_file`, if there is one.
fn with_password(info: ConnectionInfo, password: &Option<Secret>) -> ConnectionInfo {
    match password {
        None => info,
        Some(p) => {
            let settings = info.redis_settings().clone().set_password(p.expose());
            info.set_redis_settings(settings)
        }
    }
}

mod conn;
use conn::Conn;
mod ops;

fn boxed<'a, T>(f: impl Future<Output = T> + Send + 'a) -> BoxFuture<'a, T> {
    f.boxed()
}
