//! The small admin HTTP server every service exposes: `/healthz`, `/status`
//! (JSON) and `/metrics` (Prometheus text), plus any extra pages a service adds.
//!
//! Handlers are synchronous closures over shared state snapshots: the admin
//! port must answer even when the service itself is overloaded or stuck on I/O,
//! which is exactly when an operator reads it.
//!
//! Connections are HTTP/1.1 with deadlines, so a client that connects and
//! dawdles cannot hold a task forever: the request head (and an idle
//! keep-alive gap) must arrive within [`Admin::header_timeout`] (default
//! [`HEADER_TIMEOUT`]), and a connection lives at most [`CONN_LIFETIME`].
//! Handlers never read a body: a request that carries one is answered and
//! the connection is closed (hyper does not reuse a connection whose body
//! was not read), so there is no body to wait for.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a handler answers.
#[derive(Clone, Debug)]
pub struct Page {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Page {
    pub fn json(value: &serde_json::Value) -> Page {
        Page {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(serde_json::to_vec_pretty(value).unwrap_or_default()),
        }
    }

    pub fn text(status: StatusCode, body: impl Into<String>) -> Page {
        Page {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(body.into()),
        }
    }

    pub fn html(body: impl Into<String>) -> Page {
        Page {
            status: StatusCode::OK,
            content_type: "text/html; charset=utf-8",
            body: Bytes::from(body.into()),
        }
    }
}

type Handler = Arc<dyn Fn() -> Page + Send + Sync>;
type Action = Arc<dyn Fn(&str) -> Page + Send + Sync>;

/// How long a client may take to send a request head, or stay idle between
/// requests (nginx's `client_header_timeout` default is 60 s; an admin page
/// is read by curl and Prometheus, which send theirs at once).
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest life of one admin connection, whatever it does.
pub const CONN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);

/// Routes of one admin listener. `/metrics` is always served from the registry.
#[derive(Clone)]
pub struct Admin {
    registry: Arc<Registry>,
    routes: HashMap<String, Handler>,
    actions: HashMap<String, Action>,
    header_timeout: std::time::Duration,
}

// === impl Admin ===

impl Admin {
    /// An admin server with `/healthz` answering "ok" and the live page at
    /// `/` (see [`crate::live`]), until replaced.
    pub fn new(registry: Arc<Registry>) -> Admin {
        let live = crate::live::page(crate::live::Mode::Admin);
        Admin {
            registry,
            routes: HashMap::new(),
            actions: HashMap::new(),
            header_timeout: HEADER_TIMEOUT,
        }
        .route("/healthz", || Page::text(StatusCode::OK, "ok\n"))
        .route("/", move || Page::html(live.clone()))
    }

    /// Adds or replaces the handler for `path` (GET and HEAD).
    pub fn route(mut self, path: &str, f: impl Fn() -> Page + Send + Sync + 'static) -> Admin {
        self.routes.insert(path.to_owned(), Arc::new(f));
        self
    }

    /// Adds a POST route that changes something (`stackd ctl`). `f` gets the
    /// query string. Actions are taken only from loopback peers: the admin
    /// listener may be reachable from the LAN for `/metrics`, but maintenance
    /// calls come from an operator on the host.
    pub fn action(mut self, path: &str, f: impl Fn(&str) -> Page + Send + Sync + 'static) -> Admin {
        self.actions.insert(path.to_owned(), Arc::new(f));
        self
    }

    /// Answers one request from `peer` (`None`: trusted, as in tests).
    pub fn handle_from(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        peer: Option<std::net::SocketAddr>,
    ) -> Page {
        let Some(action) = self.actions.get(path) else {
            return self.handle(method, path);
        };
        if method != Method::POST {
            return Page::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 Method Not Allowed: use POST\n",
            );
        }
        if peer.is_some_and(|p| !p.ip().to_canonical().is_loopback()) {
            return Page::text(
                StatusCode::FORBIDDEN,
                "403 Forbidden: maintenance calls are taken only from this host (loopback)\n",
            );
        }
        action(query)
    }

    /// A deadline for request heads other than [`HEADER_TIMEOUT`].
    pub fn header_timeout(mut self, d: std::time::Duration) -> Admin {
        self.header_timeout = d;
        self
    }

    /// `/status` as JSON built by `f`.
    pub fn status(self, f: impl Fn() -> serde_json::Value + Send + Sync + 'static) -> Admin {
        self.route("/status", move || Page::json(&f()))
    }

    /// Answers one request; public so services can test their pages without a socket.
    pub fn handle(&self, method: &Method, path: &str) -> Page {
        if method != Method::GET && method != Method::HEAD {
            return Page::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 Method Not Allowed: use GET\n",
            );
        }
        if path == "/metrics" {
            return self.metrics();
        }
        match self.routes.get(path) {
            Some(h) => h(),
            None => {
                let mut known: Vec<&str> = self.routes.keys().map(String::as_str).collect();
                known.push("/metrics");
                known.sort_unstable();
                Page::text(
                    StatusCode::NOT_FOUND,
                    format!("404 Not Found; try {}\n", known.join(", ")),
                )
            }
        }
    }

    /// `/metrics`: the build and process series every stackd process has,
    /// then the service's own registry.
    fn metrics(&self) -> Page {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let common = crate::metrics::registry();
        let encoded = encode_registry(&mut out, &common)
            .and_then(|()| encode_registry(&mut out, &self.registry))
            .and_then(|()| encode_eof(&mut out));
        match encoded {
            Ok(()) => Page {
                status: StatusCode::OK,
                content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body: Bytes::from(out),
            },
            Err(e) => Page::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("metrics encoding failed: {e}\n"),
            ),
        }
    }

    /// Serves on `listener` until `shutdown` is cancelled.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        let this = Arc::new(self);
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let this = this.clone();
            let shutdown = shutdown.clone();
            let conn = builder.serve_connection(
                TokioIo::new(stream),
                service_fn(move |req: Request<Incoming>| {
                    let uri = req.uri();
                    let page = this.handle_from(
                        req.method(),
                        uri.path(),
                        uri.query().unwrap_or(""),
                        Some(peer),
                    );
                    let head = req.method() == Method::HEAD;
                    async move { Ok::<_, Infallible>(to_response(page, head)) }
                }),
            );
            tokio::spawn(async move {
                tokio::select! {
                    _ = conn => {}
                    _ = tokio::time::sleep(CONN_LIFETIME) => {}
                    _ = shutdown.cancelled() => {}
                }
            });
        }
    }
}

fn to_response(page: Page, head: bool) -> Response<Full<Bytes>> {
    let body = if head { Bytes::new() } else { page.body };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = page.status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(page.content_type),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn routes_and_metrics() {
        let mut reg = Registry::default();
        let c: Counter = Counter::default();
        reg.register("requests", "Requests served", c.clone());
        c.inc();
        let admin = Admin::new(Arc::new(reg)).status(|| serde_json::json!({"ok": true}));
        assert_eq!(
            admin.handle(&Method::GET, "/healthz").status,
            StatusCode::OK
        );
        let s = admin.handle(&Method::GET, "/status");
        assert_eq!(s.content_type, "application/json");
        assert!(std::str::from_utf8(&s.body)
            .unwrap()
            .contains("\"ok\": true"));
        let m = admin.handle(&Method::GET, "/metrics");
        let text = std::str::from_utf8(&m.body).unwrap();
        assert!(text.contains("requests_total 1"), "{text}");
        // Every admin listener has the build and process series, and one EOF at the end.
        assert!(text.contains("stackd_build_info{"), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(
            admin.handle(&Method::GET, "/nope").status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            admin.handle(&Method::POST, "/status").status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn actions_are_posted_from_loopback_only() {
        let admin = Admin::new(Arc::new(Registry::default())).action("/ctl/drain", |q| {
            Page::text(StatusCode::OK, format!("drained {q}\n"))
        });
        let lo: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lan: std::net::SocketAddr = "192.0.2.10:5000".parse().unwrap();
        let ok = admin.handle_from(&Method::POST, "/ctl/drain", "server=a", Some(lo));
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(&ok.body[..], b"drained server=a\n");
        let v6: std::net::SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(
            admin
                .handle_from(&Method::POST, "/ctl/drain", "", Some(v6))
                .status,
            StatusCode::OK
        );
        assert_eq!(
            admin
                .handle_from(&Method::POST, "/ctl/drain", "", Some(lan))
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            admin
                .handle_from(&Method::GET, "/ctl/drain", "", Some(lo))
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        // Other pages are unchanged, from anywhere.
        assert_eq!(
            admin
                .handle_from(&Method::GET, "/healthz", "", Some(lan))
                .status,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn serves_over_tcp_and_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let task =
            tokio::spawn(Admin::new(Arc::new(Registry::default())).serve(listener, token.clone()));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
        token.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    /// A slowloris client (one header byte at a time, or nothing at all) is
    /// disconnected at the header timeout, not kept forever.
    #[tokio::test]
    async fn slow_and_silent_clients_are_cut_at_the_header_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let limit = std::time::Duration::from_millis(500);
        let admin = Admin::new(Arc::new(Registry::default())).header_timeout(limit);
        tokio::spawn(admin.serve(listener, token.clone()));

        for trickle in [true, false] {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let t0 = tokio::time::Instant::now();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            let closed = loop {
                assert!(
                    t0.elapsed() < std::time::Duration::from_secs(5),
                    "never closed"
                );
                if trickle && s.write_all(b"X").await.is_err() {
                    break t0.elapsed();
                }
                match tokio::time::timeout(std::time::Duration::from_millis(100), s.read(&mut buf))
                    .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => break t0.elapsed(),
                    Ok(Ok(_)) | Err(_) => {}
                }
            };
            assert!(
                closed >= limit && closed < limit * 3,
                "trickle={trickle}: closed after {closed:?}, header timeout {limit:?}"
            );
        }
        token.cancel();
    }
}
