//! One client connection's task: accept to close.
//!
//! The task itself is small: while a plain connection idles (before its
//! first byte, or parked between requests) it waits here, in a future of
//! a few hundred bytes, and the protocol driver with its buffers exists
//! only while bytes flow. 10,000 idle connections cost megabytes, not tens
//! of megabytes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::h1::{self, Exit};
use super::io::ClientIo;
use super::lifecycle::{Event, Lifecycle, State};
use super::quiet::Quiet;
use super::{h2, timeouts, Ctx};

/// The first bytes of every HTTP/2 prior-knowledge connection (RFC 9113 §3.4).
const H2_START: &[u8] = b"PRI ";

/// Serves one accepted connection; holds its `max_connections` slot to the end.
///
/// This future is what a parked connection costs, so it stays flat: the
/// socket, the lifecycle and [`wait_for_bytes`]. The protocol drivers are
/// boxed (in statements of their own: a temporary lives to the end of its
/// statement, so `Box::pin(f).await` would keep room for `f` here too)
/// and exist only while bytes flow; only they listen for `kill`, since a
/// parked connection already closes on `drain`, which always comes first.
pub(crate) async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    ctx: Arc<Ctx>,
    _permit: OwnedSemaphorePermit,
) {
    let mut life = Lifecycle::new(timeouts(&ctx.shared.load().limits), Instant::now());
    if tls {
        let conn = Box::pin(tls_conn(stream, peer, &ctx, life));
        until_killed(conn, &ctx).await;
        return;
    }
    let mut io = ClientIo::Plain(stream);
    loop {
        if !wait_for_bytes(&io, &mut life, &ctx).await {
            return;
        }
        let active = Box::pin(plain(io, life, peer, &ctx));
        match until_killed(active, &ctx).await {
            Some(Exit::Parked(i, l)) => (io, life) = (i, l),
            Some(Exit::Closed) | None => return,
        }
    }
}

/// `f`'s output, or `None` once the server gives up on draining (`kill`).
async fn until_killed<F: Future>(f: F, ctx: &Ctx) -> Option<F::Output> {
    tokio::select! {
        out = f => Some(out),
        _ = Quiet::new(ctx.kill.cancelled()) => None,
    }
}

/// Waits, without buffers, for the next byte within the lifecycle's
/// deadline (`client_header_timeout` when fresh, `keepalive_timeout` when
/// idle); false: close quietly.
///
/// Every parked connection sits in this future, so it is written as one
/// flat poll (a timer, the drain token and `poll_peek`, which needs no
/// waiter of its own) rather than a `select!` over `timeout(peek)`: the
/// task's frame is half the size, and 10,000 idle connections are 10,000
/// frames. `peek` rather than read readiness: readiness left over from the
/// last read would report a parked socket ready at once.
async fn wait_for_bytes(io: &ClientIo, life: &mut Lifecycle, ctx: &Ctx) -> bool {
    let ClientIo::Plain(s) = io else {
        return true;
    };
    let Some((at, timer)) = life.deadline() else {
        return false;
    };
    let sleep = tokio::time::sleep_until(at);
    let drain = ctx.drain.cancelled();
    tokio::pin!(sleep, drain);
    let woke = std::future::poll_fn(|cx| {
        let mut probe = [0u8; 1];
        match s.poll_peek(cx, &mut ReadBuf::new(&mut probe)) {
            Poll::Ready(Ok(n)) => return Poll::Ready(Woke::Bytes(n > 0)),
            Poll::Ready(Err(_)) => return Poll::Ready(Woke::Bytes(false)),
            Poll::Pending => {}
        }
        if drain.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woke::Drain);
        }
        sleep.as_mut().poll(cx).map(|()| Woke::Expired)
    })
    .await;
    match woke {
        Woke::Bytes(more) => more,
        Woke::Expired => {
            ctx.count_timeout(timer);
            life.step(Event::Expired, Instant::now());
            false
        }
        Woke::Drain => {
            life.step(Event::Drain, Instant::now());
            false
        }
    }
}

/// What ended [`wait_for_bytes`].
enum Woke {
    /// Bytes to read (true), or the client closed (false).
    Bytes(bool),
    Expired,
    Drain,
}

/// A plain connection with bytes to read: HTTP/2 if a fresh one starts
/// with the preface, else HTTP/1.
async fn plain(mut io: ClientIo, life: Lifecycle, peer: SocketAddr, ctx: &Arc<Ctx>) -> Exit {
    let mut buf = BytesMut::with_capacity(4096);
    let State::Fresh { since } = life.state() else {
        return h1::serve(io, buf, life, peer, false, ctx).await;
    };
    while buf.len() < H2_START.len() && H2_START.starts_with(&buf) {
        let Some((at, _)) = life.deadline() else {
            return Exit::Closed;
        };
        match tokio::time::timeout_at(at, io.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Exit::Closed,
        }
    }
    match io {
        ClientIo::Plain(s) if buf.starts_with(H2_START) => {
            let life = Lifecycle::h2(*life.timeouts(), since);
            h2::serve(s, buf, peer, false, ctx, life).await;
            Exit::Closed
        }
        io => h1::serve(io, buf, life, peer, false, ctx).await,
    }
}

/// A TLS connection: the handshake within `client_header_timeout`, then
/// HTTP/2 or HTTP/1 as ALPN says. TLS connections do not park: rustls may
/// hold decrypted bytes the socket's readiness does not show.
async fn tls_conn(stream: TcpStream, peer: SocketAddr, ctx: &Arc<Ctx>, life: Lifecycle) {
    let snap = ctx.shared.load_full();
    let (Some(cfg), Some((at, timer)), State::Fresh { since }) =
        (snap.tls.clone(), life.deadline(), life.state())
    else {
        return;
    };
    let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(stream);
    let s = match tokio::time::timeout_at(at, accept).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            ctx.count_timeout(timer);
            return;
        }
    };
    if s.get_ref().1.alpn_protocol() == Some(b"h2") {
        let life = Lifecycle::h2(*life.timeouts(), since);
        return h2::serve(s, BytesMut::new(), peer, true, ctx, life).await;
    }
    let _ = h1::serve(
        ClientIo::Tls(Box::new(s)),
        BytesMut::new(),
        life,
        peer,
        true,
        ctx,
    )
    .await;
}
