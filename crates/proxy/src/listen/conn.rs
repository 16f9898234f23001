//! One client connection's task: accept to close.
//!
//! The task itself is small: while a plain connection idles (before its
//! first byte, or parked between requests) it waits here, in a future of
//! a few hundred bytes, and the protocol driver with its buffers exists
//! only while bytes flow. 10,000 idle connections cost megabytes, not tens
//! of megabytes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::h1::{self, Exit};
use super::io::ClientIo;
use super::lifecycle::{Action, Event, Lifecycle, State};
use super::lot::{Lot, HOT};
use super::quiet::Quiet;
use super::{h2, Ctx};

/// The first bytes of every HTTP/2 prior-knowledge connection (RFC 9113 §3.4).
const H2_START: &[u8] = b"PRI ";

/// Serves a connection just accepted: [`connection`] from its first state.
pub(crate) fn accepted(
    stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    ctx: Arc<Ctx>,
    permit: OwnedSemaphorePermit,
    lot: Option<Arc<Lot>>,
) -> impl Future<Output = ()> + Send {
    let life = Lifecycle::new(ctx.shared.load().timeouts.clone(), crate::clock::now());
    connection(stream, peer, tls, ctx, permit, life, lot)
}

/// Serves one connection, holding its `max_connections` slot, until it
/// closes or, idle for [`HOT`], moves to `lot` (plain connections only).
///
/// This future is what a parked connection costs, so it stays flat: the
/// socket, the lifecycle and [`wait_for_bytes`]. It is an `async move`
/// block over values built beforehand rather than an `async fn`: an
/// `async fn` moves each argument into a local of its own and its frame
/// keeps room for both. The protocol drivers are boxed (in statements of
/// their own: a temporary lives to the end of its statement, so
/// `Box::pin(f).await` would keep room for `f` here too) and exist only
/// while bytes flow; only they listen for `kill`, since a parked
/// connection already closes on `drain`, which always comes first (a
/// fresh one, which waits on, listens for `kill` in [`wait_for_bytes`]).
/// Each poll reads the clock once ([`crate::clock::Clocked`]).
pub(crate) fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    ctx: Arc<Ctx>,
    permit: OwnedSemaphorePermit,
    mut life: Lifecycle,
    lot: Option<Arc<Lot>>,
) -> impl Future<Output = ()> + Send {
    crate::clock::Clocked::new(async move {
        if tls {
            let conn = Box::pin(tls_conn(stream, peer, &ctx, life));
            until_killed(conn, &ctx).await;
            return drop(permit);
        }
        loop {
            match wait_for_bytes(&stream, &mut life, &ctx, lot.is_some()).await {
                Idle::Bytes => {}
                Idle::Closed => return drop(permit),
                Idle::Cold => {
                    if let Some(lot) = &lot {
                        lot.park(stream, life, peer, permit);
                    }
                    return;
                }
            }
            let active = Box::pin(plain(ClientIo::Plain(stream), life, peer, &ctx));
            match until_killed(active, &ctx).await {
                Some(Exit::Parked(ClientIo::Plain(s), l)) => (stream, life) = (s, l),
                Some(_) | None => return drop(permit),
            }
        }
    })
}

/// `f`'s output, or `None` once the server gives up on draining (`kill`).
fn until_killed<F: Future>(f: F, ctx: &Ctx) -> UntilKilled<'_, F> {
    UntilKilled {
        f,
        kill: Quiet::new(ctx.kill.cancelled()),
    }
}

pin_project_lite::pin_project! {
    /// See [`until_killed`]. Polled at every wakeup of the connection: the
    /// driver goes first, the kill only when the driver is not done. A
    /// struct rather than an `async fn` over a `select!`, whose states are
    /// two more levels to walk through (and lines to touch) at each wakeup.
    struct UntilKilled<'a, F> {
        #[pin]
        f: F,
        kill: Quiet<tokio_util::sync::WaitForCancellationFuture<'a>>,
    }
}

impl<F: Future> Future for UntilKilled<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.f.poll(cx) {
            return Poll::Ready(Some(out));
        }
        Pin::new(this.kill).poll(cx).map(|()| None)
    }
}

/// Waits, without buffers, for the next byte within the lifecycle's
/// deadline (`client_header_timeout` when fresh, `keepalive_timeout` when
/// idle), or for [`HOT`] if the connection may move to a lot. The drain
/// closes an idle connection; a fresh one waits on for its first request
/// (the lifecycle's `FreshDraining`), never moving to the lot (which the
/// drain closes), until the end of the grace period (`kill`) at the latest.
async fn wait_for_bytes(s: &TcpStream, life: &mut Lifecycle, ctx: &Ctx, may_leave: bool) -> Idle {
    loop {
        let Some((at, timer)) = life.deadline() else {
            return Idle::Closed;
        };
        let drained = matches!(life.state(), State::FreshDraining { .. });
        let hot_until = crate::clock::now() + HOT;
        let leave = may_leave && !drained && hot_until < at;
        let woke = NextByte {
            socket: s,
            sleep: tokio::time::sleep_until(if leave { hot_until } else { at }),
            drain: if drained {
                ctx.kill.cancelled()
            } else {
                ctx.drain.cancelled()
            },
        }
        .await;
        match woke {
            Woke::Drain if drained => return Idle::Closed,
            Woke::Bytes(true) => return Idle::Bytes,
            Woke::Bytes(false) => return Idle::Closed,
            Woke::Expired if leave => return Idle::Cold,
            Woke::Expired => {
                ctx.count_timeout(timer);
                life.step(Event::Expired, crate::clock::now());
                return Idle::Closed;
            }
            Woke::Drain => {
                if life.step(Event::Drain, crate::clock::now()) == Action::Close {
                    return Idle::Closed;
                }
            }
        }
    }
}

/// What [`wait_for_bytes`] came to.
enum Idle {
    /// Bytes to read.
    Bytes,
    /// Closed by the client, the deadline or the drain.
    Closed,
    /// Still idle after [`HOT`], long before the deadline: time for the lot.
    Cold,
}

pin_project_lite::pin_project! {
    /// The next byte on a parked socket, its deadline, or the drain (once
    /// drained, the end of the grace period).
    ///
    /// Every parked connection sits in this future, so it is one flat
    /// struct (a timer, the drain token and `poll_peek`, which needs no
    /// waiter of its own) rather than a `select!` over `timeout(peek)` or
    /// a `poll_fn` over pinned locals: the task's frame is what 10,000
    /// idle connections cost 10,000 times. `peek` rather than read
    /// readiness: readiness left over from the last read would report a
    /// parked socket ready at once.
    struct NextByte<'a> {
        socket: &'a TcpStream,
        #[pin]
        sleep: tokio::time::Sleep,
        #[pin]
        drain: tokio_util::sync::WaitForCancellationFuture<'a>,
    }
}

impl Future for NextByte<'_> {
    type Output = Woke;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Woke> {
        let this = self.project();
        let mut probe = [0u8; 1];
        match this.socket.poll_peek(cx, &mut ReadBuf::new(&mut probe)) {
            Poll::Ready(Ok(n)) => return Poll::Ready(Woke::Bytes(n > 0)),
            Poll::Ready(Err(_)) => return Poll::Ready(Woke::Bytes(false)),
            Poll::Pending => {}
        }
        if this.drain.poll(cx).is_ready() {
            return Poll::Ready(Woke::Drain);
        }
        this.sleep.poll(cx).map(|()| Woke::Expired)
    }
}

/// What ended [`NextByte`].
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
    let (State::Fresh { since } | State::FreshDraining { since, .. }) = life.state() else {
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
            let life = Lifecycle::h2(life.timeouts().clone(), since);
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
        let life = Lifecycle::h2(life.timeouts().clone(), since);
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
