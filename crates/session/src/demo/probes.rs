//! The routes that never touch a session: `/healthz` (is the store there?)
//! and `/echo` (what arrived, for testing proxies). They keep answering while
//! Redis is down, which is exactly when they are needed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http::StatusCode;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::json;

use super::http_util::{count_body, json, text, Resp};
use super::routes::App;

/// Largest `/echo` body (counted, not kept).
const ECHO_BODY_LIMIT: u64 = 64 * 1024 * 1024;

// === impl App ===

impl App {
    pub(super) async fn healthz(&self) -> Resp {
        let store = self.layer.store();
        match tokio::time::timeout(self.layer.deadline(), store.ping()).await {
            Ok(Ok(())) => text(
                StatusCode::OK,
                format!("ok: session store {} answers\n", store.describe()),
            ),
            Ok(Err(e)) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "503 session store {} unavailable: {}\n",
                    store.describe(),
                    e.reason()
                ),
            ),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "503 session store {} unavailable: no answer within {:?}\n",
                    store.describe(),
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
        let body_len = match count_body(body, ECHO_BODY_LIMIT).await {
            Ok(n) => n,
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
