//! A WebSocket tunnel after `101 Switching Protocols`: bytes copied both
//! ways until either side closes, or until both have been silent for
//! `read_timeout` (nginx `proxy_read_timeout` on upgraded connections;
//! HAProxy `timeout tunnel`). The tunnel runs on the client connection's
//! own task, so it keeps its `max_connections` slot and ends with the
//! shutdown grace period like every connection.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::io::ClientIo;
use super::super::lifecycle::{Event, Lifecycle, Timer};
use crate::upstream::conn::UpstreamConn;

/// Copies both ways until a close, an error or the tunnel deadline
/// (returned when it fired).
pub(super) async fn tunnel(
    io: &mut ClientIo,
    buf: &mut BytesMut,
    mut conn: UpstreamConn,
    life: &mut Lifecycle,
) -> Option<Timer> {
    // Bytes that came after the heads belong to the tunnel already.
    if !forward(&mut conn.stream, buf, life).await || !forward(io, &mut conn.buf, life).await {
        return None;
    }
    let (mut cr, mut cw) = tokio::io::split(&mut *io);
    let (mut ur, mut uw) = conn.stream.split();
    let mut down = BytesMut::with_capacity(16 * 1024);
    let (mut client_open, mut upstream_open) = (true, true);
    while client_open || upstream_open {
        let (at, timer) = life.deadline()?;
        buf.clear();
        down.clear();
        buf.reserve(16 * 1024);
        tokio::select! {
            r = cr.read_buf(buf), if client_open => {
                client_open = pass(r, &mut uw, buf, life).await;
            }
            r = ur.read_buf(&mut down), if upstream_open => {
                upstream_open = pass(r, &mut cw, &mut down, life).await;
            }
            _ = tokio::time::sleep_until(at) => {
                life.step(Event::Expired, crate::clock::now());
                return Some(timer);
            }
        }
    }
    None
}

/// Passes what one side read to the other; false once the reading side has
/// closed (its peer's write side is then shut, half-closing the tunnel).
async fn pass<W: AsyncWrite + Unpin>(
    read: std::io::Result<usize>,
    to: &mut W,
    data: &mut BytesMut,
    life: &mut Lifecycle,
) -> bool {
    match read {
        Ok(n) if n > 0 => forward(to, data, life).await,
        _ => {
            let _ = to.shutdown().await;
            false
        }
    }
}

/// Writes `data` to `to` within the tunnel deadline; false on failure.
async fn forward<W: AsyncWrite + Unpin>(
    to: &mut W,
    data: &mut BytesMut,
    life: &mut Lifecycle,
) -> bool {
    if data.is_empty() {
        return true;
    }
    let Some((at, _)) = life.deadline() else {
        return false;
    };
    life.step(Event::Traffic, crate::clock::now());
    let ok = matches!(
        tokio::time::timeout_at(at, to.write_all(data)).await,
        Ok(Ok(()))
    );
    data.clear();
    ok
}
