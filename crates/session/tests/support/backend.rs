//! Demo backends served in-process on 127.0.0.1:0, each with its own store
//! handle (as separate processes would have), stopped on drop.

use std::net::SocketAddr;
use std::time::Duration;

use stackd_common::config::DemoBackendConfig;
use stackd_common::CancellationToken;
use stackd_session::demo;

pub struct Backend {
    pub addr: SocketAddr,
    pub node: String,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn config(node: &str, redis: &str, ttl: Duration, timeout: Duration) -> DemoBackendConfig {
    let text = format!("[demo_backend]\nnode_id = {node:?}\nredis = {redis:?}\n");
    let mut cfg = stackd_common::Config::from_toml_str(&text, std::path::Path::new("test"))
        .unwrap()
        .demo_backend
        .unwrap();
    cfg.session_ttl = ttl;
    cfg.redis_timeout = timeout;
    cfg
}

impl Backend {
    pub async fn start(cfg: DemoBackendConfig) -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store =
            stackd_session::open_store_with(&cfg.redis, &stackd_session::StoreOptions::from(&cfg))
                .unwrap();
        let token = CancellationToken::new();
        let t = token.clone();
        let node = cfg.node_id.clone();
        let task = tokio::spawn(async move {
            demo::serve(listener, store, &cfg, t).await.unwrap();
        });
        Backend {
            addr,
            node,
            token,
            task: Some(task),
        }
    }

    /// Stops accepting and waits (bounded) for the server task to end.
    pub async fn stop(&mut self) {
        self.token.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("backend did not stop")
                .unwrap();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.token.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
