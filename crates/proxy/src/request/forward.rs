//! The exchange with an upstream: pick a server, send the request on a
//! pooled or new connection, read the response head while the body goes
//! up, stream the response back, and return the connection to its pool
//! only when both directions are done.
//!
//! Retries follow nginx's `proxy_next_upstream error timeout`: a connect
//! failure always moves on to the next server (nothing was sent); a
//! failure after the request went out moves on only for idempotent
//! requests without a body (RFC 9110 §9.2.2). A pooled connection the
//! server had closed is not the server's fault: the request goes again on
//! a new connection to the same server, if no body byte beyond those that
//! came with the head was read from the client. Tries are bounded by
//! `next_upstream_tries` and `next_upstream_timeout`.

use std::pin::Pin;

use bytes::Bytes;
use http::StatusCode;

use super::finish::Trace;
use super::prepare::Prepared;
use super::rewrite;
use super::{Answer, Client, Outcome};
use crate::body::{self, download, write_upstream};
use crate::codec::framing::{Decoder, Framing};
use crate::codec::response::ResponseHead;
use crate::codec::{names, BadResponse, Fields, Lookup};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::snapshot::{Limits, Snapshot};
use crate::timer::Kept;
use crate::upstream::balance::PickKey;
use crate::upstream::conn::{read_head, End, Lease, UpstreamConn};
use crate::upstream::health::Transition;
use crate::upstream::ServerState;

/// Pooled connections tried, at most, before opening a new one.
const POOLED_ATTEMPTS: usize = 4;

/// Why one server did not answer.
enum Miss {
    /// Nothing reached the server (connect failed): try the next one.
    NotSent(ProxyError),
    /// The request went out: only a replayable one may go to another server.
    Sent(ProxyError),
    /// The client side failed (too slow, too large, gone): stop.
    Client(ProxyError),
}

/// A response head, on the connection it came from.
struct Headed<'s> {
    lease: Lease<'s>,
    head: ResponseHead,
    /// The whole request body went out before the head came back.
    sent: bool,
}

/// Sends `req` to a server of its upstream and the answer to `client`.
pub(crate) async fn forward<C: Client>(
    snap: &Snapshot,
    req: &Prepared<'_>,
    client: &mut C,
    trace: &mut Trace,
    mut timer: Pin<&mut Kept>,
) -> Result<Outcome, ProxyError> {
    let up = req.upstream;
    let deadline = (!up.next_upstream_timeout.is_zero())
        .then(|| crate::clock::now() + up.next_upstream_timeout);
    let key = PickKey {
        client_ip: req.client,
        sticky_node: req.sticky.as_deref(),
    };
    let prefix = client.take_buffered();
    let mut tried = 0u64;
    let mut last = ProxyError::upstream(ErrorKind::NoServer);
    for _ in 0..up.tries {
        if deadline.is_some_and(|d| crate::clock::now() >= d) {
            break;
        }
        let Some((bit, server)) = up.pick(&key, tried, crate::clock::now_ms) else {
            break;
        };
        tried |= 1u64.checked_shl(bit as u32).unwrap_or(0);
        let state = &server.state;
        trace.server = Some(state.addr());
        let in_flight = state.begin();
        let t0 = trace.timed.then(crate::clock::now);
        match attempt(snap, req, state, prefix.as_ref(), client, timer.as_mut()).await {
            Ok(headed) => {
                trace.upstream_time = t0.map(|t| t.elapsed());
                passive(req, state, true);
                let out = respond(snap, req, client, headed, trace, timer.as_mut()).await;
                drop(in_flight);
                return out;
            }
            Err(Miss::Client(e)) => return Err(e),
            Err(Miss::NotSent(e)) => last = failed(req, state, e),
            Err(Miss::Sent(e)) => {
                let retry = req.replayable && !matches!(e.kind, ErrorKind::BadResponse(_));
                last = failed(req, state, e);
                if !retry {
                    break;
                }
            }
        }
    }
    Err(last)
}

/// Records a failed attempt against the server's passive health.
fn failed(req: &Prepared<'_>, state: &ServerState, e: ProxyError) -> ProxyError {
    let up = req.upstream;
    if let ErrorKind::BadResponse(why) = e.kind {
        up.stats.bad_response(why);
        tracing::warn!(upstream = %up.name, server = %state.addr(), reason = why.label(),
            error = %e, "broken upstream response");
    } else {
        tracing::warn!(upstream = %up.name, server = %state.addr(), error = %e, "upstream attempt failed");
    }
    state.record_failure(e.to_string(), crate::clock::unix_ms());
    passive(req, state, false);
    e
}

fn passive(req: &Prepared<'_>, state: &ServerState, ok: bool) {
    if ok && state.passive_clean() {
        return; // nothing to clear: no clock read
    }
    let up = req.upstream;
    match state.record(&up.passive, ok, crate::clock::now_ms()) {
        Some(Transition::Up) => {
            tracing::info!(upstream = %up.name, server = %state.addr(), "server is answering again")
        }
        Some(Transition::Down) => tracing::warn!(upstream = %up.name, server = %state.addr(),
            "server marked down for fail_timeout (max_fails reached)"),
        None => {}
    }
}

/// One server: a pooled connection the server closed meanwhile is
/// replaced by another, then by a new one.
async fn attempt<'s, C: Client>(
    snap: &Snapshot,
    req: &Prepared<'_>,
    state: &'s ServerState,
    prefix: Option<&Bytes>,
    client: &mut C,
    mut timer: Pin<&mut Kept>,
) -> Result<Headed<'s>, Miss> {
    let limits = &snap.limits;
    for round in 0..=POOLED_ATTEMPTS {
        let pooled = (round < POOLED_ATTEMPTS)
            .then(|| state.pool().take())
            .flatten();
        let conn = match pooled {
            Some(c) => c,
            None => UpstreamConn::connect(state.addr(), limits.connect_timeout)
                .await
                .map_err(Miss::NotSent)?,
        };
        let mut lease = Lease {
            conn,
            server: state,
        };
        let mut pulled = false;
        match exchange(
            &mut lease,
            req,
            prefix,
            client,
            limits,
            &mut pulled,
            timer.as_mut(),
        )
        .await
        {
            Ok((head, sent)) => return Ok(Headed { lease, head, sent }),
            Err(e) if e.side == Side::Client => return Err(Miss::Client(e)),
            Err(e) if stale(&lease, &e) && !pulled => continue,
            Err(e) => return Err(Miss::Sent(e)),
        }
    }
    Err(Miss::NotSent(ProxyError::upstream(ErrorKind::NoServer)))
}

/// A reused connection that failed before any response byte: the server
/// had closed it while idle.
fn stale(lease: &Lease<'_>, e: &ProxyError) -> bool {
    lease.conn.reused && lease.conn.buf.is_empty() && matches!(e.kind, ErrorKind::UpstreamIo(_))
}

/// Writes the head (with the body bytes that came with it), then sends
/// the rest of the body while waiting for the response head. An early
/// head stops the upload: the connection is then not reusable. Once the
/// request is sent (or the upstream stopped taking it), the head has
/// `read_timeout` to come, on `timer`.
async fn exchange<C: Client>(
    lease: &mut Lease<'_>,
    req: &Prepared<'_>,
    prefix: Option<&Bytes>,
    client: &mut C,
    limits: &Limits,
    pulled: &mut bool,
    timer: Pin<&mut Kept>,
) -> Result<(ResponseHead, bool), ProxyError> {
    let conn = &mut lease.conn;
    let done_with_prefix = client.body_done();
    send_head(conn, req, prefix, done_with_prefix, limits).await?;
    let (mut rd, mut wr) = conn.stream.split();
    let mut sent = req.body == Framing::Empty || done_with_prefix;
    let head = read_head(
        &mut rd,
        &mut conn.buf,
        &req.method,
        limits.max_upstream_header,
    );
    tokio::pin!(head);
    if !sent {
        // Made only when there is a body to send: a future's first state is
        // written where it lives, in the connection's future, on every request.
        let upload = upload_rest(client, &mut wr, req.body, limits, pulled);
        tokio::pin!(upload);
        tokio::select! {
            biased;
            h = &mut head => return h.map(|h| (h, sent)),
            r = &mut upload => match r {
                Ok(()) => sent = true,
                Err(e) if e.side == Side::Client => return Err(e),
                // The upstream stopped taking the body; it may still answer
                // (a 413 of its own, say) within read_timeout.
                Err(_) => {}
            },
        }
    }
    let at = crate::clock::now() + limits.read_timeout;
    match crate::timer::until(timer, at, head).await {
        Some(h) => h.map(|h| (h, sent)),
        None => Err(ProxyError::upstream(ErrorKind::ReadTimeout)),
    }
}

/// The upstream head, and the body bytes already read, in one write.
async fn send_head(
    conn: &mut UpstreamConn,
    req: &Prepared<'_>,
    prefix: Option<&Bytes>,
    body_done: bool,
    limits: &Limits,
) -> Result<(), ProxyError> {
    let pieces = prefix.map_or(&[][..], std::slice::from_ref);
    let chunked = req.body == Framing::Chunked;
    let chunk = body::chunk_of(chunked, pieces);
    let mut slices = body::Slices::new(&req.head, chunk.as_ref(), pieces, chunked && body_done);
    write_upstream(&mut conn.stream, slices.as_mut(), limits.send_timeout).await
}

/// The body bytes still to come from the client, and the last chunk.
async fn upload_rest<C: Client, W: tokio::io::AsyncWrite + Unpin>(
    client: &mut C,
    up: &mut W,
    out: Framing,
    limits: &Limits,
    pulled: &mut bool,
) -> Result<(), ProxyError> {
    if out == Framing::Empty || client.body_done() {
        return Ok(());
    }
    body::upload(client, up, out, limits.send_timeout, pulled).await
}

/// The response: its head to the client, then its body; the connection
/// back to the pool if both directions finished.
async fn respond<C: Client>(
    snap: &Snapshot,
    req: &Prepared<'_>,
    client: &mut C,
    headed: Headed<'_>,
    trace: &mut Trace,
    timer: Pin<&mut Kept>,
) -> Result<Outcome, ProxyError> {
    let Headed {
        mut lease,
        head,
        sent,
    } = headed;
    let ResponseHead {
        status,
        fields,
        framing,
        keep_alive,
        ..
    } = head;
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    if upgrade && !req.upgrade {
        let e = ProxyError::upstream(ErrorKind::BadResponse(BadResponse::UnexpectedUpgrade));
        return Err(failed(req, lease.server, e));
    }
    let answer = answer(req, lease.server, status, fields, framing);
    trace.status = Some(answer.status);
    client.head(answer).await?;
    if upgrade {
        return Ok(Outcome::Upgrade(lease.conn));
    }
    let mut decoder = Decoder::new(framing);
    let conn = &mut lease.conn;
    let mut counted = Counted {
        client,
        bytes: &mut trace.bytes,
    };
    let read_timeout = snap.limits.read_timeout;
    if let Err(e) = download(
        &mut conn.stream,
        &mut conn.buf,
        &mut decoder,
        &mut counted,
        read_timeout,
        timer,
    )
    .await
    {
        if let ErrorKind::BadResponse(why) = e.kind {
            req.upstream.stats.bad_response(why);
            tracing::warn!(upstream = %req.upstream.name, server = %lease.server.addr(),
                reason = why.label(), "broken upstream response body");
        }
        return Err(e);
    }
    client.end().await?;
    let end = End {
        request_sent: sent && client.body_done(),
        response_read: true,
        server_keeps: keep_alive,
    };
    lease.release(end, snap.limits.upstream_keepalive);
    Ok(Outcome::Done)
}

/// The client-facing head: hop-by-hop out, `Location` rewritten, the
/// route's `add_headers` in.
fn answer<'r>(
    req: &Prepared<'r>,
    server: &ServerState,
    status: StatusCode,
    fields: Fields,
    framing: Framing,
) -> Answer<'r> {
    // A bodyless answer's Content-Length is passed through (HEAD, 304).
    let declared = (framing == Framing::Empty)
        .then(|| crate::codec::request::content_length(&fields).ok())
        .flatten()
        .flatten();
    let location = fields
        .values(&names::LOCATION)
        .next()
        .and_then(|l| rewrite::relocate(l, server.authority(), req.scheme, req.host.to_str().ok()));
    let (length, body) = match framing {
        Framing::Length(n) => (Some(n), n > 0),
        Framing::Empty => (declared, false),
        Framing::Chunked | Framing::Close => (None, true),
    };
    Answer::new(
        status,
        fields,
        location,
        &req.route.add_headers,
        length,
        body,
    )
}

/// A sink that counts the body bytes it passes on, for the log.
struct Counted<'a, C> {
    client: &'a mut C,
    bytes: &'a mut u64,
}

impl<C: Client> body::Sink for Counted<'_, C> {
    async fn data(&mut self, pieces: &mut [Bytes]) -> Result<(), ProxyError> {
        *self.bytes += pieces.iter().map(|p| p.len() as u64).sum::<u64>();
        self.client.data(pieces).await
    }
}
