//! The routes that never touch a session: `/healthz` (is the store there?)
//! and `/echo` (what arrived, for testing proxies). They keep answering while
//! Redis is down, which is exactly when they are needed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http::StatusCode;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::json;

use super::http_util::{json, read_body, text, Resp};
use super::routes::App;

// === impl App ===

impl App {
    /// Public (the proxy's health check reads it): says whether the store
    /// answers and why not, never where it is or who we log in as.
    pub(super) async fn healthz(&self) -> Resp {
        let store = self.layer.store();
        match tokio::time::timeout(self.layer.deadline(), store.ping()).await {
            Ok(Ok(())) => text(StatusCode::OK, "ok: session store answers\n"),
            Ok(Err(e)) => {
                tracing::warn!(store = %store.describe(), error = %e, "health check: session store unavailable");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("503 session store unavailable: {}\n", e.reason()),
                )
            }
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "503 session store unavailable: no answer within {:?}\n",
                    self.layer.deadline()
                ),
            ),
        }
    }

    pub(super) async fn echo(&self, req: Request<Incoming>, peer: SocketAddr) -> Resp {
        let (parts, body) = req.into_parts();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_ascii_lowercase())
                .and_modify(|e| {
                    e.push_str(", ");
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        let body_len = match read_body(body, self.body.echo_max, self.body.timeout, false).await {
            Ok((n, _)) => n,
            Err(r) => return r,
        };
        json(
            StatusCode::OK,
            &json!({
                "node": self.node,
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "query": parts.uri.query(),
                "headers": headers,
                "body_len": body_len,
                "peer": peer.to_string(),
            }),
        )
    }
}
