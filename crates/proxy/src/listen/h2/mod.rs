//! HTTP/2 (prior knowledge, or ALPN `h2`) through hyper, with the
//! connection lifecycle around it: the preface and first SETTINGS within
//! `client_header_timeout`, `keepalive_timeout` while no stream is open,
//! GOAWAY when the server drains, and `client_send_timeout` on writes.
//! Each stream's exchange runs as its own task (streams interleave), with
//! the same `request::serve` as HTTP/1.

mod client;
mod io;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::lifecycle::{Action, Event, Lifecycle, State};
use super::quiet::Quiet;
use super::Ctx;
use crate::body::BodyLimits;
use crate::codec::framing::Framing;
use crate::error::{ErrorKind, ProxyError};
use crate::request::rewrite::Peer;
use client::{error_head, response, H2Body, H2Client};
use io::{H2Io, StreamGuard, Watch};

/// How long a closing connection may take to say GOAWAY before it is dropped.
const GOAWAY_WAIT: Duration = Duration::from_secs(1);

/// Serves HTTP/2 on `io` (`prefix`: bytes already read from it) until it closes.
pub(crate) async fn serve<I>(
    io: I,
    prefix: BytesMut,
    peer: SocketAddr,
    tls: bool,
    ctx: &Arc<Ctx>,
    mut life: Lifecycle,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Arc::new(Watch::default());
    let snap = ctx.shared.load_full();
    let io = H2Io::new(io, prefix, watch.clone(), snap.limits.client_send_timeout);
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.max_header_list_size(u32::try_from(snap.limits.max_header).unwrap_or(u32::MAX));
    let (c, w) = (ctx.clone(), watch.clone());
    let svc = service_fn(move |req| stream(req, c.clone(), peer, tls, w.clone()));
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut draining = false;
    let mut drain = Quiet::new(ctx.drain.cancelled());
    loop {
        let deadline = life.deadline();
        let action = tokio::select! {
            _ = conn.as_mut() => return,
            _ = watch.notify.notified() => {
                let now = crate::clock::now();
                if watch.ready() && matches!(life.state(), State::H2Preface { .. }) {
                    life.step(Event::H2Ready, now);
                }
                life.step(Event::H2Streams { open: watch.open() }, now)
            }
            _ = sleep_until(deadline.map(|d| d.0)) => {
                if let Some((_, timer)) = deadline {
                    ctx.count_timeout(timer);
                }
                life.step(Event::Expired, crate::clock::now())
            }
            _ = &mut drain, if !draining => {
                draining = true;
                life.step(Event::Drain, crate::clock::now())
            }
        };
        match action {
            Action::Continue | Action::Answer408 | Action::Linger => {}
            Action::GoAway => conn.as_mut().graceful_shutdown(),
            Action::Close => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(GOAWAY_WAIT, conn.as_mut()).await;
                return;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One stream: the exchange runs on its own task; the response head comes back here.
async fn stream(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    tls: bool,
    watch: Arc<Watch>,
) -> Result<Response<H2Body>, Infallible> {
    let guard = StreamGuard::new(watch);
    let snap = ctx.shared.load_full();
    let (parts, body) = req.into_parts();
    let framing = match framing(&parts.headers, body.is_end_stream()) {
        Ok(f) => f,
        Err(e) => return Ok(response(error_head(&e), guard)),
    };
    let limits = BodyLimits {
        idle: snap.limits.body_timeout,
        min_rate: snap.limits.body_min_rate,
    };
    let (tx, rx) = oneshot::channel();
    let client = H2Client::new(
        body,
        limits,
        snap.limits.max_body,
        snap.limits.client_send_timeout,
        tx,
    );
    ctx.tracker.spawn(crate::clock::Clocked::new(async move {
        let text = crate::request::rewrite::ip_text(peer.ip());
        let peer = Peer {
            ip: peer.ip(),
            text: &text,
            tls,
            trusted: &snap.trusted,
        };
        let start = crate::clock::now();
        let parts = crate::codec::request::Parts {
            fields: crate::codec::Fields::from_map(&parts.headers),
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
        };
        let timer = std::pin::pin!(crate::timer::kept());
        crate::request::serve(&snap, parts, framing, peer, start, client, timer).await;
    }));
    let head = rx
        .await
        .unwrap_or_else(|_| error_head(&ProxyError::upstream(ErrorKind::NoServer)));
    Ok(response(head, guard))
}

/// How an HTTP/2 request body goes upstream: its declared length, none, or chunked.
fn framing(h: &http::HeaderMap, end_stream: bool) -> Result<Framing, ProxyError> {
    let declared = crate::codec::request::content_length(h).map_err(|()| {
        ProxyError::client(ErrorKind::Refused {
            status: http::StatusCode::BAD_REQUEST,
            reason: "invalid content-length",
        })
    })?;
    Ok(match (declared, end_stream) {
        (Some(n), _) => Framing::Length(n),
        (None, true) => Framing::Empty,
        (None, false) => Framing::Chunked,
    })
}
