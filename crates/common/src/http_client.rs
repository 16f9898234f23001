//! The one HTTP client stackd uses for its own outbound calls: VRRP tracking
//! checks, notify webhooks, the lab's probes (and the proxy's health prober).
//!
//! It is hyper-util's pooled client with a connector that speaks plain TCP for
//! `http://` and rustls for `https://` (system trust store, like curl, plus any
//! CA a caller adds). Every call has a deadline that covers connecting, the
//! TLS handshake, the response head and the body, and the body is read only up
//! to [`MAX_BODY`]: a probe target that hangs or streams forever costs one
//! timeout, never a stuck task or unbounded memory.
//!
//! Idle pooled connections are dropped after [`POOL_IDLE`], shorter than the
//! header timeout of stackd's own admin listeners, so a reused connection is
//! never one the server is about to close.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::tls_stream::MaybeTls;

/// Largest response body read; the rest is refused as [`HttpError::Body`].
pub const MAX_BODY: usize = 4 << 20;
/// Idle pooled connections are closed after this.
pub const POOL_IDLE: Duration = Duration::from_secs(5);

/// A cheap-to-clone handle on one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
    agent: &'static str,
}

/// A response: its status and its (bounded) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Why a request got no response. Each variant names the URL, so a log line
/// or a status page says what was asked as well as what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: no answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("{url}: {reason}")]
    Request { url: String, reason: String },
    #[error("{url}: reading the body: {reason}")]
    Body { url: String, reason: String },
}

/// Why extra trust roots could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("no certificate in the PEM data")]
    NoCertificate,
    #[error("PEM data: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("certificate: {0}")]
    Certificate(#[from] rustls::Error),
}

// === impl HttpClient ===

impl HttpClient {
    /// A client trusting the system's CA store; `agent` is its User-Agent.
    pub fn new(agent: &'static str) -> HttpClient {
        Self::from_roots(agent, system_roots().clone())
    }

    /// A client that also trusts the CA certificates in `pem` (a private CA).
    pub fn with_extra_roots(agent: &'static str, pem: &[u8]) -> Result<HttpClient, TlsSetupError> {
        let mut roots = system_roots().clone();
        let mut found = false;
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.add(cert?)?;
            found = true;
        }
        if !found {
            return Err(TlsSetupError::NoCertificate);
        }
        Ok(Self::from_roots(agent, roots))
    }

    fn from_roots(agent: &'static str, roots: RootCertStore) -> HttpClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls' default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = Connector {
            http,
            tls: TlsConnector::from(Arc::new(tls)),
        };
        let inner = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(4)
            .build(connector);
        HttpClient { inner, agent }
    }

    /// `GET url` within `timeout`.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Response, HttpError> {
        self.send(Method::GET, url, None, timeout).await
    }

    /// `POST url` with a JSON body, within `timeout`.
    pub async fn post_json(
        &self,
        url: &str,
        json: Vec<u8>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        self.send(Method::POST, url, Some(json), timeout).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        json: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let uri = parse_url(url)?;
        let mut req = Request::builder().method(method).uri(uri);
        if json.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(json.unwrap_or_default())))
            .map_err(|e| HttpError::Url {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        self.request(req, timeout).await
    }

    /// Sends `req` as built by the caller (its own headers, e.g. `Host` for
    /// a health check of a virtual host), within `timeout`. The URI must be
    /// absolute (`http://` or `https://`); a User-Agent is added if missing.
    pub async fn request(
        &self,
        mut req: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let url = req.uri().to_string();
        parse_url(&url)?;
        if !req.headers().contains_key(USER_AGENT) {
            req.headers_mut()
                .insert(USER_AGENT, http::HeaderValue::from_static(self.agent));
        }
        let work = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| HttpError::Request {
                    url: url.clone(),
                    reason: chain(&e),
                })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| HttpError::Body {
                    url: url.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| HttpError::Timeout {
                url: url.clone(),
                after: timeout,
            })?
    }
}

/// Only `http://` and `https://` URLs with a host.
///
/// ```
/// use stackd_common::http_client::parse_url;
/// assert!(parse_url("https://hooks.example.com/x").is_ok());
/// assert!(parse_url("ftp://x/").is_err());
/// assert!(parse_url("http:///x").is_err());
/// ```
pub fn parse_url(url: &str) -> Result<Uri, HttpError> {
    let bad = |reason: &str| HttpError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("only http:// and https:// URLs")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(uri)
}

/// An error with its causes: "client error (Connect): tcp connect error:
/// Connection refused (os error 111)" says why, "client error" does not.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The system trust store, read once per process.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!("no system CA certificates found: https:// calls will fail");
        }
        roots
    })
}

// === impl Connector ===

/// `http://`: a TCP connection; `https://`: TCP, then a rustls handshake with
/// the URL's host as the server name.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: TlsConnector,
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, io::Error>> + Send>>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        self.http.poll_ready(cx).map_err(io::Error::other)
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let tcp = self.http.call(dst.clone());
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = tcp.await.map_err(io::Error::other)?.into_inner();
            if dst.scheme_str() != Some("https") {
                return Ok(TokioIo::new(MaybeTls::Plain(tcp)));
            }
            let host = dst.host().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = tls.connect(name, tcp).await?;
            Ok(TokioIo::new(MaybeTls::Tls(Box::new(stream))))
        })
    }
}

/// A connection with or without TLS.
type Stream = MaybeTls<TlsStream<TcpStream>>;

impl Connection for MaybeTls<TlsStream<TcpStream>> {
    fn connected(&self) -> Connected {
        match self {
            MaybeTls::Plain(s) => s.connected(),
            MaybeTls::Tls(s) => s.get_ref().0.connected(),
        }
    }
}

#[cfg(test)]
mod tests;
