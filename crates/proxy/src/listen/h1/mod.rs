//! The HTTP/1 connection driver: reads heads with our codec, runs each
//! request through `request::serve` with an [`H1Client`], and does what
//! the [`Lifecycle`] says after it: next request, lingering close, tunnel
//! or close.
//!
//! Idle plain connections *park*: when no byte of a next request has come
//! for [`PARK_AFTER`] and nothing is buffered, this driver returns the
//! socket to the connection task, which waits for the next byte in a
//! future of a few hundred bytes; buffers and this driver's state are
//! freed (nginx frees its buffers on idle keep-alive connections too).
//! Unlike the hyper-based park it replaces, the decision needs no guess:
//! our buffer is empty and the lifecycle says `Idle`, so no request or body
//! is in flight.

mod client;
mod linger;
mod tunnel;

use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::time::Duration;

use arc_swap::cache::Cache;
use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::io::ClientIo;
use super::lifecycle::{Action, Event, Lifecycle, State, Timer};
use super::quiet::Quiet;
use super::{idle_delay, Ctx};
use crate::codec::framing::Framing;
use crate::codec::request::{self, RequestHead};
use crate::codec::{write, Refusal};
use crate::error::{ErrorKind, ProxyError};
use crate::request::rewrite::Peer;
use crate::request::Outcome;
use crate::snapshot::Snapshot;
use crate::timer::Kept;
pub(crate) use client::H1Client;

/// How long an idle connection keeps its buffers before it parks. Under
/// load the next request comes sooner, and parking after every response
/// (a fresh driver per request) costs throughput. See [`idle_delay`] for
/// the benchmark builds.
pub(crate) const PARK_AFTER: Duration = idle_delay(Duration::from_millis(25));

/// How the driver ended. Moved once per park: boxing the big variant
/// would cost an allocation to save a copy.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Exit {
    /// Idle with nothing buffered: wait for the next byte outside.
    Parked(ClientIo, Lifecycle),
    Closed,
}

/// What reading a head came to (moved once per request).
#[allow(clippy::large_enum_variant)]
enum HeadRead {
    Head(RequestHead),
    Refused(Refusal),
    Park,
    Close,
}

/// Serves HTTP/1 requests on `io` (`buf`: bytes already read) until it closes or parks.
pub(crate) async fn serve(
    mut io: ClientIo,
    mut buf: BytesMut,
    mut life: Lifecycle,
    peer: SocketAddr,
    tls: bool,
    ctx: &Ctx,
) -> Exit {
    let mut running = Cache::new(&*ctx.shared);
    let text = crate::request::rewrite::ip_text(peer.ip());
    // Kept for every request of this connection (see `crate::timer`): the
    // wait for a head and the wait for the upstream's answer.
    let mut head_timer = pin!(crate::timer::kept());
    let mut upstream_timer = pin!(crate::timer::kept());
    loop {
        // The running config for this request: a plain load of the
        // pointer, and a reference count touched only when a reload
        // replaced it (arc-swap's `load` takes and returns one of its
        // per-thread slots, two atomic read-modify-writes a request).
        let snap = running.load();
        let max = snap.limits.max_header;
        let read = read_head(
            &mut io,
            &mut buf,
            &mut life,
            ctx,
            max,
            !tls,
            head_timer.as_mut(),
        );
        let head = match read.await {
            HeadRead::Head(h) => h,
            HeadRead::Park => return Exit::Parked(io, life),
            HeadRead::Close => return Exit::Closed,
            HeadRead::Refused(r) => {
                snap.unrouted.observe(r.status.as_u16(), Duration::ZERO);
                tracing::debug!(%peer, reason = r.reason, status = %r.status, "request refused");
                let e = ProxyError::client(ErrorKind::Refused {
                    status: r.status,
                    reason: r.reason,
                });
                answer_and_close(&mut io, &mut life, ctx, e).await;
                return Exit::Closed;
            }
        };
        let peer = Peer {
            ip: peer.ip(),
            text: &text,
            tls,
            trusted: &snap.trusted,
        };
        // `request::serve`'s future is made here, in the connection's
        // future, not inside a wrapper's: a future is copied whole where it
        // is made, and this one is made for every request.
        let start = crate::clock::now();
        let c = client(&mut io, &mut buf, &mut life, ctx, snap, &head, start);
        let (parts, framing, timer) = (head.parts, head.framing, upstream_timer.as_mut());
        let outcome = crate::request::serve(snap, parts, framing, peer, start, c, timer).await;
        let expired = match after(outcome, &mut life) {
            Then::Next => {
                // A large body was read into up to 64 KiB of room; the
                // next head needs a page. Returned now, not when the
                // connection parks: a busy connection may never park.
                if buf.is_empty() && client::may_have_grown(framing) {
                    buf = BytesMut::new();
                }
                continue;
            }
            Then::Close => None,
            Then::Linger => linger::linger(&mut io, &mut life, &mut buf).await,
            Then::Tunnel(conn) => tunnel::tunnel(&mut io, &mut buf, conn, &mut life).await,
        };
        if let Some(t) = expired {
            ctx.count_timeout(t);
        }
        return Exit::Closed;
    }
}

/// The client side of the request whose head was parsed at `start`; the
/// lifecycle moves on to its body (if any) and response.
fn client<'a>(
    io: &'a mut ClientIo,
    buf: &'a mut BytesMut,
    life: &'a mut Lifecycle,
    ctx: &'a Ctx,
    snap: &Snapshot,
    head: &RequestHead,
    start: Instant,
) -> H1Client<'a> {
    let body = !matches!(head.framing, Framing::Empty | Framing::Length(0));
    life.step(
        Event::HeadDone {
            body,
            keep_alive: head.keep_alive,
        },
        start,
    );
    let mut c = H1Client::new(io, buf, life, ctx, head.framing);
    c.max_body = snap.limits.max_body;
    c.expect_continue = head.expect_continue;
    c.version = head.parts.version;
    c
}

/// What follows a request on its connection.
enum Then {
    Next,
    Close,
    Linger,
    /// 101 went out: the connection becomes a tunnel to this upstream connection.
    Tunnel(crate::upstream::conn::UpstreamConn),
}

/// What the lifecycle says after a request. Not a future: the usual
/// answer, the next request, is known at once, and a future made for it
/// would be written into the connection's state on every request.
fn after(outcome: Outcome, life: &mut Lifecycle) -> Then {
    match outcome {
        Outcome::Done | Outcome::Refused => {
            match life.step(Event::ResponseDone, crate::clock::now()) {
                Action::Continue => Then::Next,
                Action::Linger => Then::Linger,
                _ => Then::Close,
            }
        }
        Outcome::Aborted => Then::Close,
        Outcome::Upgrade(conn) => {
            life.step(Event::Upgraded, crate::clock::now());
            Then::Tunnel(conn)
        }
    }
}

/// Reads until a whole head is buffered, under the lifecycle's deadline.
async fn read_head(
    io: &mut ClientIo,
    buf: &mut BytesMut,
    life: &mut Lifecycle,
    ctx: &Ctx,
    max: usize,
    park: bool,
    mut timer: Pin<&mut Kept>,
) -> HeadRead {
    loop {
        if !buf.is_empty() {
            if matches!(
                life.state(),
                State::Fresh { .. } | State::FreshDraining { .. } | State::Idle { .. }
            ) {
                life.step(Event::HeadStarted, crate::clock::now());
            }
            match request::parse(buf, max) {
                Ok(Some(h)) => return HeadRead::Head(h),
                Ok(None) => {}
                Err(r) => return HeadRead::Refused(r),
            }
        }
        if let Some(end) = read_more(io, buf, life, ctx, park, timer.as_mut()).await {
            return end;
        }
    }
}

/// Reads more of a head under the lifecycle's deadline; `Some` when the
/// connection parks or ends instead.
///
/// An idle connection first waits [`PARK_AFTER`] without watching the
/// drain token (polling it takes a lock shared by every connection): under
/// load the next request comes sooner. Then a plain connection parks and
/// the connection task watches the drain; a TLS one waits here, watching it.
async fn read_more(
    io: &mut ClientIo,
    buf: &mut BytesMut,
    life: &mut Lifecycle,
    ctx: &Ctx,
    park: bool,
    timer: Pin<&mut Kept>,
) -> Option<HeadRead> {
    let Some((deadline, which)) = life.deadline() else {
        return Some(HeadRead::Close);
    };
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    let idle = matches!(life.state(), State::Idle { .. });
    let quick = if idle {
        deadline.min(crate::clock::now() + PARK_AFTER)
    } else {
        deadline
    };
    let read = match crate::timer::until(timer, quick, io.read_buf(buf)).await {
        Some(r) => r,
        None if quick == deadline => return Some(expired(io, life, ctx, which).await),
        None if park => return Some(HeadRead::Park),
        None if ctx.draining() => {
            life.step(Event::Drain, crate::clock::now());
            return Some(HeadRead::Close);
        }
        None => tokio::select! {
            r = io.read_buf(buf) => r,
            _ = tokio::time::sleep_until(deadline) => return Some(expired(io, life, ctx, which).await),
            _ = Quiet::new(ctx.drain.cancelled()) => {
                life.step(Event::Drain, crate::clock::now());
                return Some(HeadRead::Close);
            }
        },
    };
    match read {
        Ok(n) if n > 0 => None,
        _ => {
            life.step(Event::PeerGone, crate::clock::now());
            Some(HeadRead::Close)
        }
    }
}

/// The head's deadline passed: a quiet close, or 408 and a lingering close.
async fn expired(io: &mut ClientIo, life: &mut Lifecycle, ctx: &Ctx, timer: Timer) -> HeadRead {
    ctx.count_timeout(timer);
    if life.step(Event::Expired, crate::clock::now()) == Action::Answer408 {
        answer_and_close(io, life, ctx, ProxyError::client(ErrorKind::ClientTimeout)).await;
    }
    HeadRead::Close
}

/// Writes one of our short answers with `Connection: close`, then lingers.
async fn answer_and_close(io: &mut ClientIo, life: &mut Lifecycle, ctx: &Ctx, e: ProxyError) {
    life.step(Event::Respond { close: true }, crate::clock::now());
    let bytes = write::short_response(e.status(), e.reason(), true, &crate::clock::http_date());
    let at = life.deadline().map_or_else(crate::clock::now, |(at, _)| at);
    let wrote = tokio::time::timeout_at(at, tokio::io::AsyncWriteExt::write_all(io, &bytes)).await;
    if !matches!(wrote, Ok(Ok(()))) {
        return;
    }
    if life.step(Event::ResponseDone, crate::clock::now()) == Action::Linger {
        let mut scratch = BytesMut::new();
        if let Some(t) = linger::linger(io, life, &mut scratch).await {
            ctx.count_timeout(t);
        }
    }
}
