//! One request through the proxy: limits, route, forwarding headers, pick a
//! server, send with retries, and stream the answer back.
//!
//! Retries follow nginx's `proxy_next_upstream error timeout`: a connect
//! failure always moves on to the next server (nothing was sent, and
//! hyper's `try_send_request` hands the request back); a failure after the
//! request went out moves on only for idempotent methods without a body
//! (RFC 9110 §9.2.2), replaying the saved head. Tries are bounded by
//! `next_upstream_tries` and `next_upstream_timeout`.

use std::convert::Infallible;
use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::access::{Finish, InFlight, LogLine};
use crate::balance::{sticky, Balance, PickKey};
use crate::body::{BodyError, ReqBody, RespBody};
use crate::conn::ConnInfo;
use crate::error::{ErrorKind, ProxyError, Side};
use crate::forward::{self, Peer};
use crate::health::Transition;
use crate::pool::{self, Conn};
use crate::snapshot::{Limits, Snapshot};
use crate::stats::UpstreamStats;
use crate::upstream::{ServerState, UpstreamRt};

/// Stale pooled connections tried before opening a fresh one.
const POOLED_ATTEMPTS: usize = 4;

/// The hyper service entry point.
pub async fn handle(
    shared: Arc<ArcSwap<Snapshot>>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    conn.request_started();
    let start = Instant::now();
    let snap = shared.load_full();
    Ok(proxy(&snap, &conn, req, start).await)
}

/// A request head kept for replaying an idempotent, bodyless request.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    fn build(&self) -> Request<ReqBody> {
        let mut r = Request::new(ReqBody::Empty);
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = self.uri.clone();
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// A response head from a server, with what is needed to finish the exchange.
struct Answer {
    resp: Response<Incoming>,
    conn: Conn,
    server: Arc<ServerState>,
    in_flight: InFlight,
    upstream_time: Duration,
}

/// A failed attempt; `returned` is the request when nothing was sent.
struct Failed {
    err: ProxyError,
    returned: Option<Request<ReqBody>>,
}

async fn proxy(
    snap: &Snapshot,
    conn: &Arc<ConnInfo>,
    mut req: Request<Incoming>,
    start: Instant,
) -> Response<RespBody> {
    let peer = Peer {
        ip: conn.peer.ip(),
        tls: conn.tls,
        trusted: &snap.trusted,
    };
    let client = forward::client_ip(req.headers(), &peer);
    let mut log = (snap.access_log != stackd_common::config::proxy::AccessLog::Off
        && tracing::enabled!(target: "access", tracing::Level::INFO))
    .then(|| LogLine {
        format: snap.access_log,
        client,
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        referer: req.headers().get(header::REFERER).cloned(),
        user_agent: req.headers().get(header::USER_AGENT).cloned(),
        upstream: None,
        upstream_time: None,
    });
    let fail = |e: ProxyError, stats: &Arc<UpstreamStats>, log: Option<LogLine>| {
        error_response(&e, finish(start, e.status(), stats, None, conn, log))
    };

    if let Err(e) = check_limits(&req, &snap.limits) {
        return fail(e, &snap.unrouted, log);
    }
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    let host = match req.headers().get(header::HOST) {
        Some(h) => Some(h.clone()),
        None => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    if host.is_none() && req.version() == Version::HTTP_11 {
        return fail(
            ProxyError::client(ErrorKind::BadRequest("missing Host")),
            &snap.unrouted,
            log,
        );
    }
    let host_str = host.as_ref().and_then(|h| h.to_str().ok());
    let Some(route) = snap.router.find(host_str, req.uri().path()) else {
        return fail(ProxyError::proxy(ErrorKind::NoRoute), &snap.unrouted, log);
    };
    let Some(up) = snap.upstreams.get(route.upstream) else {
        return fail(ProxyError::proxy(ErrorKind::NoRoute), &snap.unrouted, log);
    };

    let sticky_node: Option<String> = (up_policy(up) == Balance::Sticky)
        .then(|| {
            req.headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| sticky::node_in_cookie(c, &up.sticky_cookie).map(str::to_owned))
        })
        .flatten();
    let key = PickKey {
        client_ip: client,
        sticky_node: sticky_node.as_deref(),
    };

    // RFC 9110 §7.8: Upgrade is HTTP/1.1 only (h2 uses extended CONNECT, RFC 8441).
    let upgrade = req.version() == Version::HTTP_11 && forward::is_upgrade(req.headers());
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    forward::strip_hop_by_hop(&mut parts.headers, upgrade);
    forward::add_forwarding(&mut parts.headers, &peer, client, host.as_ref());
    if !parts.headers.contains_key(header::HOST) {
        // h2 carries the host in :authority; an HTTP/1.0 client may send none,
        // and then the upstream name stands in (nginx's $proxy_host).
        let h = host
            .clone()
            .or_else(|| HeaderValue::from_str(&up.name).ok());
        if let Some(h) = h {
            parts.headers.insert(header::HOST, h);
        }
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        // RFC 9112 §3.2.1: origin-form towards the server.
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = Uri::try_from(pq).unwrap_or_else(|_| Uri::from_static("/"));
    }
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();

    let bodyless = body.is_end_stream();
    // RFC 9110 §9.2.2: idempotent methods may be retried automatically.
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    let replay = (idempotent && bodyless && !upgrade && up.tries > 1).then(|| Replay {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
    });
    let req_body = if bodyless {
        ReqBody::Empty
    } else {
        ReqBody::client(body, snap.limits.max_body, snap.limits.body_timeout)
    };
    let upstream_req = Request::from_parts(parts, req_body);

    let answer = match forward_with_retries(snap, up, upstream_req, replay, &key, start).await {
        Ok(a) => a,
        Err((e, server)) => {
            if let Some(l) = log.as_mut() {
                l.upstream = server;
            }
            let stats = if e.side == Side::Client {
                &snap.unrouted
            } else {
                &up.stats
            };
            return fail(e, stats, log);
        }
    };
    if let Some(l) = log.as_mut() {
        l.upstream = Some(answer.server.addr);
        l.upstream_time = Some(answer.upstream_time);
    }

    let Answer {
        mut resp,
        conn: upconn,
        server,
        in_flight,
        ..
    } = answer;
    let status = resp.status();
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        if let Some(client_side) = on_upgrade {
            conn.upgraded();
            let upstream_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(tunnel(client_side, upstream_side, server.addr));
        }
    }
    forward::strip_hop_by_hop(resp.headers_mut(), switching);
    forward::rewrite_location(
        resp.headers_mut(),
        &server.authority,
        peer.scheme(),
        host_str,
    );
    for (k, v) in &route.add_headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    let fin = finish(start, status, &up.stats, Some(in_flight), conn, log);
    let keep = (!switching).then_some((upconn, server, snap.limits.upstream_keepalive));
    resp.map(|b| RespBody::upstream(b, snap.limits.read_timeout, keep, fin))
}

fn up_policy(up: &UpstreamRt) -> Balance {
    up.policy()
}

/// 413 from Content-Length before reading any body; 431 from the head size.
fn check_limits(req: &Request<Incoming>, limits: &Limits) -> Result<(), ProxyError> {
    if limits.max_body > 0 {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_body) {
            return Err(ProxyError::client(ErrorKind::BodyTooLarge));
        }
    }
    let head: usize = req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > limits.max_header {
        return Err(ProxyError::client(ErrorKind::HeadersTooLarge));
    }
    Ok(())
}

fn finish(
    start: Instant,
    status: StatusCode,
    stats: &Arc<UpstreamStats>,
    in_flight: Option<InFlight>,
    conn: &Arc<ConnInfo>,
    log: Option<LogLine>,
) -> Finish {
    Finish {
        start,
        status: status.as_u16(),
        bytes: 0,
        stats: stats.clone(),
        in_flight,
        conn: conn.clone(),
        log,
    }
}

fn error_response(e: &ProxyError, fin: Finish) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::full(
        Bytes::from_static(e.reason().as_bytes()),
        Some(fin),
    ));
    *resp.status_mut() = e.status();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if matches!(
        e.kind,
        ErrorKind::BodyTooLarge | ErrorKind::ClientTimeout | ErrorKind::BadRequest(_)
    ) {
        // The rest of the request was not read: the connection cannot be reused.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn forward_with_retries(
    snap: &Snapshot,
    up: &UpstreamRt,
    req: Request<ReqBody>,
    replay: Option<Replay>,
    key: &PickKey<'_>,
    start: Instant,
) -> Result<Answer, (ProxyError, Option<SocketAddr>)> {
    let deadline = (!up.next_upstream_timeout.is_zero()).then(|| start + up.next_upstream_timeout);
    let mut tried = 0u64;
    let mut pending = Some(req);
    let mut last = (ProxyError::upstream(ErrorKind::NoServer), None);
    for _ in 0..up.tries {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let Some((bit, server)) = up.pick(key, tried, crate::clock::now_ms()) else {
            break;
        };
        if bit < 64 {
            tried |= 1 << bit;
        }
        let Some(req) = pending
            .take()
            .or_else(|| replay.as_ref().map(Replay::build))
        else {
            break;
        };
        let state = server.state.clone();
        state
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let in_flight = InFlight::new(state.clone());
        let t0 = Instant::now();
        match send(&state, req, &snap.limits).await {
            Ok((resp, conn)) => {
                if state.record(&up.passive, true, crate::clock::now_ms()) == Some(Transition::Up) {
                    tracing::info!(upstream = %up.name, server = %state.addr, "server is answering again");
                }
                return Ok(Answer {
                    resp,
                    conn,
                    server: state,
                    in_flight,
                    upstream_time: t0.elapsed(),
                });
            }
            Err(f) => {
                if f.err.side == Side::Client {
                    return Err((f.err, Some(state.addr)));
                }
                let t = state.record(&up.passive, false, crate::clock::now_ms());
                tracing::warn!(upstream = %up.name, server = %state.addr, error = %f.err, "upstream attempt failed");
                if t == Some(Transition::Down) {
                    tracing::warn!(upstream = %up.name, server = %state.addr,
                        "server marked down for fail_timeout (max_fails reached)");
                }
                pending = f.returned;
                last = (f.err, Some(state.addr));
            }
        }
    }
    Err(last)
}

/// One attempt on one server: pooled connections first, then a new one.
async fn send(
    state: &ServerState,
    mut req: Request<ReqBody>,
    limits: &Limits,
) -> Result<(Response<Incoming>, Conn), Failed> {
    for attempt in 0..=POOLED_ATTEMPTS {
        let pooled = if attempt < POOLED_ATTEMPTS {
            state.pool.take()
        } else {
            None
        };
        let is_pooled = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => match pool::connect(state.addr, limits.connect_timeout).await {
                Ok(c) => c,
                Err(err) => {
                    return Err(Failed {
                        err,
                        returned: Some(req),
                    })
                }
            },
        };
        match tokio::time::timeout(limits.connect_timeout, conn.ready()).await {
            Ok(Ok(())) => {}
            _ if is_pooled => continue,
            Ok(Err(e)) => {
                return Err(Failed {
                    err: ProxyError::upstream(ErrorKind::Upstream(e)),
                    returned: Some(req),
                })
            }
            Err(_) => {
                return Err(Failed {
                    err: ProxyError::upstream(ErrorKind::ConnectTimeout),
                    returned: Some(req),
                })
            }
        }
        let progress = req.body().progress();
        match wait_response(conn.try_send_request(req), progress.as_deref(), limits).await {
            Err(_) => {
                return Err(Failed {
                    err: ProxyError::upstream(ErrorKind::ReadTimeout),
                    returned: None,
                })
            }
            Ok(Ok(resp)) => return Ok((resp, conn)),
            Ok(Err(mut e)) => {
                let back = e.take_message();
                let err = e.into_error();
                if let Some(client_err) = client_fault(&err) {
                    return Err(Failed {
                        err: client_err,
                        returned: None,
                    });
                }
                match back {
                    // A pooled connection the server had closed: not the server's fault.
                    Some(r) if is_pooled => req = r,
                    returned => {
                        return Err(Failed {
                            err: ProxyError::upstream(ErrorKind::Upstream(err)),
                            returned,
                        })
                    }
                }
            }
        }
    }
    // Unreachable in practice: the last attempt always opens a new connection.
    Err(Failed {
        err: ProxyError::upstream(ErrorKind::NoServer),
        returned: Some(req),
    })
}

/// Waits for the response head: `send_timeout` between request-body frames
/// while the body is still going up, then `read_timeout` from its last byte
/// (from the send itself for bodyless requests), like nginx.
async fn wait_response<F: std::future::Future>(
    fut: F,
    progress: Option<&crate::body::Progress>,
    limits: &Limits,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::pin!(fut);
    let sent_at = crate::clock::now_ms();
    loop {
        let (last, done) = progress.map_or((sent_at, true), |p| p.get());
        let limit = if done {
            limits.read_timeout
        } else {
            limits.send_timeout
        };
        let since = crate::clock::now_ms().saturating_sub(last.max(sent_at));
        let left = limit.saturating_sub(Duration::from_millis(since));
        match tokio::time::timeout(left, &mut fut).await {
            Ok(r) => return Ok(r),
            Err(e) => {
                let (now_last, now_done) = progress.map_or((sent_at, true), |p| p.get());
                if (now_last, now_done) == (last, done) {
                    return Err(e);
                }
            }
        }
    }
}

/// A request-body error raised by our own limits while hyper was sending.
fn client_fault(err: &hyper::Error) -> Option<ProxyError> {
    let mut src = err.source();
    while let Some(s) = src {
        if let Some(b) = s.downcast_ref::<BodyError>() {
            return match b {
                BodyError::TooLarge => Some(ProxyError::client(ErrorKind::BodyTooLarge)),
                BodyError::ClientTimeout => Some(ProxyError::client(ErrorKind::ClientTimeout)),
                BodyError::Hyper(_) => Some(ProxyError::client(ErrorKind::ClientGone)),
                BodyError::UpstreamTimeout => None,
            };
        }
        src = s.source();
    }
    None
}

/// Joins the two upgraded halves and copies both ways until either side closes.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    addr: SocketAddr,
) {
    match tokio::try_join!(client, upstream) {
        Ok((c, u)) => {
            let mut c = TokioIo::new(c);
            let mut u = TokioIo::new(u);
            if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
                tracing::debug!(upstream = %addr, error = %e, "upgraded tunnel ended");
            }
        }
        Err(e) => tracing::warn!(upstream = %addr, error = %e, "protocol upgrade failed"),
    }
}
