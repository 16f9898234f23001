//! Loopback test kit: real hyper backends on 127.0.0.1:0, a proxy on
//! 127.0.0.1:0, and a small client. Everything stops on drop.
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stackd_common::config::ProxyConfig;
use stackd_common::CancellationToken;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A backend answering:
/// - `/echo`: "name\n" then every request header as `name: value` lines, then `body_len: N`
/// - `/slow`: after 3 s
/// - `/healthz`: 200, or 503 once `sick` is set
/// - `/redirect`: 302 to `http://<own addr>/landed`
/// - `/upgrade`: 101 then echoes raw bytes
/// - anything else: its name
pub struct Backend {
    pub addr: SocketAddr,
    pub name: &'static str,
    pub hits: Arc<AtomicUsize>,
    /// TCP connections accepted, to see upstream keep-alive at work.
    pub conns: Arc<AtomicUsize>,
    pub sick: Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
}

impl Backend {
    pub async fn start(name: &'static str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, name)
    }

    pub fn on(listener: TcpListener, name: &'static str) -> Backend {
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let hits = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let sick = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, h, k, n) = (stop.clone(), hits.clone(), sick.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = s.cancelled() => return,
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                n.fetch_add(1, Ordering::Relaxed);
                let (s, h, k) = (s.clone(), h.clone(), k.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(name, addr, h.clone(), k.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    tokio::select! {
                        _ = conn => {}
                        // Killing the backend drops every connection mid-flight.
                        _ = s.cancelled() => {}
                    }
                });
            }
        });
        Backend {
            addr,
            name,
            hits,
            conns,
            sick,
            stop,
        }
    }

    /// Stops accepting and drops every open connection, like a crashed process.
    pub fn kill(&self) {
        self.stop.cancel();
    }

    /// [`Backend::kill`], then waits (at most 5 s) until its tasks have run:
    /// the port refuses connections and open ones are gone.
    pub async fn kill_and_wait(&self) {
        self.kill();
        stackd_testkit::eventually(
            "the killed backend refusing connections",
            Duration::from_secs(5),
            || async { tokio::net::TcpStream::connect(self.addr).await.is_err() },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn answer(
    name: &'static str,
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    sick: Arc<std::sync::atomic::AtomicBool>,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path != "/healthz" {
        hits.fetch_add(1, Ordering::Relaxed);
    }
    let text = |s: String| Response::new(Full::new(Bytes::from(s)));
    Ok(match path.as_str() {
        "/echo" => {
            let mut out = format!("{name}\n");
            for (k, v) in req.headers() {
                out.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
            }
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            out.push_str(&format!("body_len: {body}\n"));
            text(out)
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            text(name.into())
        }
        "/healthz" => {
            let mut r = text("ok".into());
            if sick.load(Ordering::Relaxed) {
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            r
        }
        "/redirect" => Response::builder()
            .status(302)
            .header("location", format!("http://{addr}/landed"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
        "/upgrade" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let (mut r, mut w) = tokio::io::split(&mut io);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
            Response::builder()
                .status(101)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        _ => text(name.into()),
    })
}

/// A running proxy; shuts down on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub reloads: mpsc::Sender<ProxyConfig>,
    pub shutdown: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<Result<(), stackd_proxy::ProxyError>>>,
}

/// The value of the unlabelled metric `name` on the proxy's admin listener.
pub async fn metric(p: &Proxy, name: &str) -> f64 {
    let m = stackd_testkit::http::get_async(p.admin, "/metrics")
        .await
        .unwrap()
        .body;
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix("{} ")?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{m}"))
}

/// Parses a `[proxy]` table; `{listen}` and `{admin}` are replaced by the given addresses.
pub fn config(toml: &str, listen: SocketAddr, admin: SocketAddr) -> ProxyConfig {
    let text = toml
        .replace("{listen}", &listen.to_string())
        .replace("{admin}", &admin.to_string());
    let cfg = stackd_common::Config::from_toml_str(&text, Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("bad test config:\n{e}\n{text}"));
    cfg.proxy.unwrap()
}

impl Proxy {
    /// Starts a proxy on fresh loopback ports; `toml` uses `{listen}` and `{admin}`.
    pub async fn start(toml: &str) -> Proxy {
        Self::start_tls(toml, false).await
    }

    pub async fn start_tls(toml: &str, tls: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let cfg = config(toml, addr, admin_addr);
        let (tx, rx) = mpsc::channel(1);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(stackd_proxy::serve(
            vec![stackd_proxy::Bound { listener, tls }],
            Some(admin),
            cfg,
            rx,
            shutdown.clone(),
        ));
        Proxy {
            addr,
            admin: admin_addr,
            reloads: tx,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn config(&self, toml: &str) -> ProxyConfig {
        config(toml, self.addr, self.admin)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// GET `url` and return status and body text (10 s bound).
pub async fn get(c: &HttpClient, url: &str) -> (StatusCode, String) {
    let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    send(c, req).await
}

pub async fn send(c: &HttpClient, req: Request<Full<Bytes>>) -> (StatusCode, String) {
    let fut = async {
        let resp = c.request(req).await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{e:?}"))?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => panic!("request failed: {e}"),
        Err(_) => panic!("request timed out"),
    }
}

/// Sends raw bytes and reads until the peer closes or 10 s pass.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    stackd_testkit::http::exchange(addr, bytes, Duration::from_secs(10))
        .await
        .unwrap()
}

/// A two-server round-robin upstream over `a` and `b`.
pub fn two_servers(a: SocketAddr, b: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[proxy]
listen = ["{{listen}}"]
admin = "{{admin}}"
access_log = "off"
{extra}

[[proxy.upstream]]
name = "app"
servers = [ {{ addr = "{a}" }}, {{ addr = "{b}" }} ]

[[proxy.route]]
path = "/"
upstream = "app"
add_headers = {{ "Access-Control-Allow-Origin" = "*" }}
"#
    )
}

/// A one-server upstream over `a`.
pub fn one_server(a: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[proxy]
listen = ["{{listen}}"]
admin = "{{admin}}"
access_log = "off"
{extra}

[[proxy.upstream]]
name = "app"
servers = [ {{ addr = "{a}" }} ]

[[proxy.route]]
path = "/"
upstream = "app"
add_headers = {{ "Access-Control-Allow-Origin" = "*" }}
"#
    )
}
