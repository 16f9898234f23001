//! The lab's two demo backends, run one of two ways:
//! - as `stackd demo-backend` processes sharing a real `redis-server` (the
//!   normal case, and what the five hosts do), so a person can `kill` one;
//! - inside the lab process sharing one in-memory store, when no
//!   `redis-server` is installed. Sessions are then shared only because both
//!   backends live in this process: fine for a demo, never for production.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use stackd_common::config::DemoBackendConfig;
use stackd_common::CancellationToken;
use stackd_session::{MemoryStore, SessionStore};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::procs::Procs;
use crate::LabError;

/// Where the backends keep sessions and how they run.
pub enum Backends {
    Processes {
        exe: std::path::PathBuf,
        redis: SocketAddr,
    },
    InProcess {
        store: Arc<dyn SessionStore>,
        running: HashMap<String, CancellationToken>,
    },
}

// === impl Backends ===

impl Backends {
    pub fn processes(exe: &Path, redis: SocketAddr) -> Backends {
        Backends::Processes {
            exe: exe.to_owned(),
            redis,
        }
    }

    pub fn in_memory() -> Backends {
        Backends::InProcess {
            store: Arc::new(MemoryStore::new()),
            running: HashMap::new(),
        }
    }

    /// Starts backend `node` on `addr`; returns its PID when it is a process.
    pub async fn start(
        &mut self,
        procs: &mut Procs,
        dir: &Path,
        node: &str,
        addr: SocketAddr,
    ) -> Result<Option<u32>, LabError> {
        match self {
            Backends::Processes { exe, redis } => {
                let mut cmd = Command::new(&*exe);
                cmd.arg("demo-backend")
                    .args(["--listen", &addr.to_string(), "--node-id", node])
                    .args(["--redis", &format!("redis://{redis}/")]);
                procs.spawn(node, cmd, dir).map(Some)
            }
            Backends::InProcess { store, running } => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| LabError::io(format!("listen on {addr} for {node}"), e))?;
                let cfg = demo_config(node, addr);
                let token = CancellationToken::new();
                running.insert(node.to_owned(), token.clone());
                let store = store.clone();
                let name = node.to_owned();
                tokio::spawn(async move {
                    if let Err(e) = stackd_session::demo::serve(listener, store, &cfg, token).await
                    {
                        println!("lab: backend {name} stopped: {e}");
                    }
                });
                Ok(None)
            }
        }
    }

    pub fn running(&self, procs: &mut Procs, node: &str) -> bool {
        match self {
            Backends::Processes { .. } => procs.running(node),
            Backends::InProcess { running, .. } => running.contains_key(node),
        }
    }

    pub async fn stop(&mut self, procs: &mut Procs, node: &str) {
        match self {
            Backends::Processes { .. } => procs.stop(node, crate::procs::GRACE).await,
            Backends::InProcess { running, .. } => {
                if let Some(t) = running.remove(node) {
                    t.cancel();
                }
            }
        }
    }

    /// Stops in-process backends (processes are stopped with the others).
    pub fn stop_in_process(&mut self) {
        if let Backends::InProcess { running, .. } = self {
            running.drain().for_each(|(_, t)| t.cancel());
        }
    }

    /// What the status page says about session storage.
    pub fn describe(&self) -> String {
        match self {
            Backends::Processes { redis, .. } => format!("redis://{redis}/"),
            Backends::InProcess { .. } => {
                "in-memory store inside the lab process (no redis-server on PATH)".into()
            }
        }
    }

    pub fn redis(&self) -> Option<SocketAddr> {
        match self {
            Backends::Processes { redis, .. } => Some(*redis),
            Backends::InProcess { .. } => None,
        }
    }
}

fn demo_config(node: &str, addr: SocketAddr) -> DemoBackendConfig {
    DemoBackendConfig::with_defaults(node, "memory://", addr)
}
