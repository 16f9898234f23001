//! One client connection's task: accept to close.
//!
//! The task itself is small: while a plain connection idles (before its
//! first byte, or parked between requests) it waits here, in a future of
//! a few hundred bytes, and the protocol driver with its buffers exists
//! only while bytes flow. 10,000 idle connections cost megabytes, not tens
//! of megabytes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
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
pub(crate) async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: bool,
    ctx: Arc<Ctx>,
    _permit: OwnedSemaphorePermit,
) {
    let life = Lifecycle::new(timeouts(&ctx.shared.load().limits), Instant::now());
    tokio::select! {
        _ = run(stream, peer, tls, &ctx, life) => {}
        _ = Quiet::new(ctx.kill.cancelled()) => {}
    }
}

async fn run(stream: TcpStream, peer: SocketAddr, tls: bool, ctx: &Arc<Ctx>, mut life: Lifecycle) {
    if tls {
        return Box::pin(tls_conn(stream, peer, ctx, life)).await;
    }
    let mut io = ClientIo::Plain(stream);
    loop {
        if !wait_for_bytes(&io, &mut life, ctx).await {
            return;
        }
        match Box::pin(plain(io, life, peer, ctx)).await {
            Exit::Parked(i, l) => (io, life) = (i, l),
            Exit::Closed => return,
        }
    }
}

/// Waits, without buffers, for the next byte within the lifecycle's
/// deadline (`client_header_timeout` when fresh, `keepalive_timeout` when
/// idle); false: close quietly.
async fn wait_for_bytes(io: &ClientIo, life: &mut Lifecycle, ctx: &Ctx) -> bool {
    let ClientIo::Plain(s) = io else {
        return true;
    };
    let Some((at, timer)) = life.deadline() else {
        return false;
    };
    let mut probe = [0u8; 1];
    // `peek` waits for data; `readable()` may report a fresh socket ready at once.
    tokio::select! {
        r = tokio::time::timeout_at(at, s.peek(&mut probe)) => match r {
            Ok(Ok(n)) => n > 0,
            Ok(Err(_)) => false,
            Err(_) => {
                ctx.count_timeout(timer);
                life.step(Event::Expired, Instant::now());
                false
            }
        },
        _ = ctx.drain.cancelled() => {
            life.step(Event::Drain, Instant::now());
            false
        }
    }
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
