//! Bodies in both directions, streamed, never buffered whole.
//!
//! - [`upload`]: the request body from the client to the upstream,
//!   re-framed for the upstream (`Content-Length` as received, or chunked).
//! - [`download`]: the response body from the upstream to the client,
//!   decoded by our codec, so a broken framing is noticed and that upstream
//!   connection is never reused.
//!
//! Each side of the proxy implements [`Source`] (where request-body bytes
//! come from) and [`Sink`] (where response-body bytes go) under its own
//! deadlines; the pumps here own the upstream side's: `send_timeout` per
//! write to the upstream, `read_timeout` per read from it.

mod pace;

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::error::Elapsed;
use tokio::time::Instant;

pub(crate) use pace::{BodyLimits, BodyTimer, Pace};

use crate::codec::framing::{chunk_head, ChunkHead, Decoded, Decoder, Framing, LAST_CHUNK};
use crate::codec::BadResponse;
use crate::error::{ErrorKind, ProxyError};
use crate::timer::Kept;

/// Where a request body comes from (the client side of an exchange).
pub(crate) trait Source {
    /// The next piece of the body, `None` at its end. The client side
    /// applies its own limits (size, `client_body_timeout`, minimum rate).
    fn next(&mut self) -> impl Future<Output = Result<Option<Bytes>, ProxyError>> + Send;

    /// The next piece if it is here already (more of what the last read
    /// brought), under the same limits; `None` when the next piece would
    /// take a wait, and at the end, which [`Source::next`] then reports.
    fn buffered(&mut self) -> Result<Option<Bytes>, ProxyError>;

    /// Whether the body has ended: no piece is left, [`Source::next`]
    /// will say so.
    fn ended(&self) -> bool;
}

/// Where a response body goes (the client side of an exchange).
pub(crate) trait Sink {
    /// Sends body pieces, in order: one write where the client side can
    /// (several pieces are the chunks that one read brought, see
    /// [`download`]). The sink may take the pieces (`mem::take`) rather
    /// than clone them. The client side applies `client_send_timeout`.
    fn data(&mut self, pieces: &mut [Bytes])
        -> impl Future<Output = Result<(), ProxyError>> + Send;
}

/// Room for one read of a response head: a page, as nginx's
/// `proxy_buffer_size`. Every upstream connection in use (and idle in the
/// pool) holds this much; a larger head grows the buffer as it comes.
pub(crate) const HEAD_READ: usize = 4 * 1024;
/// Room for one read of a response body: large bodies move in few system
/// calls. Every read is followed by a write to the client and, for a client
/// that waits on its socket, a wakeup, so the size sets how many of each a
/// large body costs the proxy and the client alike. 64 KiB (a read of
/// 68 KiB after the head's page) served 1 MiB responses about a tenth
/// slower than 128 KiB; 256 KiB was no faster and held more memory in
/// flight than nginx's whole peak (docs/BENCHMARKS.md, "What each lever
/// bought"). Only a download in flight holds it (1,000 of them at once
/// peaked at 91 MiB, nginx at 58); a pooled connection keeps at most 16 KiB.
const BODY_READ: usize = 128 * 1024;

/// `f`, unless `at` comes first; a timer is made only when `f` is not
/// ready at once (most reads and writes of a busy proxy are).
pub(crate) async fn before<F: Future>(at: Instant, f: F) -> Result<F::Output, Elapsed> {
    let mut f = std::pin::pin!(f);
    if let Poll::Ready(v) = futures::poll!(f.as_mut()) {
        return Ok(v);
    }
    tokio::time::timeout_at(at, f).await
}

/// Reads from the upstream into `buf` (with room for `room` bytes), with no
/// deadline of its own: the caller's select holds it. `Ok(0)` at EOF.
pub(crate) async fn read_room<R: AsyncRead + Unpin>(
    up: &mut R,
    buf: &mut BytesMut,
    room: usize,
) -> Result<usize, ProxyError> {
    if buf.capacity() - buf.len() < room / 4 {
        buf.reserve(room);
    }
    up.read_buf(buf)
        .await
        .map_err(|e| ProxyError::upstream(ErrorKind::UpstreamIo(e)))
}

/// Writes all of `parts` to the upstream, each write within `send_timeout`.
pub(crate) async fn write_upstream<W: AsyncWrite + Unpin>(
    up: &mut W,
    parts: &mut [IoSlice<'_>],
    send_timeout: Duration,
) -> Result<(), ProxyError> {
    let mut parts = parts;
    while !parts.is_empty() {
        let at = crate::clock::now() + send_timeout;
        let n = match before(at, up.write_vectored(parts)).await {
            Err(_) => return Err(ProxyError::upstream(ErrorKind::SendTimeout)),
            Ok(Err(e)) => return Err(ProxyError::upstream(ErrorKind::UpstreamIo(e))),
            Ok(Ok(0)) => {
                return Err(ProxyError::upstream(ErrorKind::UpstreamIo(
                    std::io::ErrorKind::WriteZero.into(),
                )))
            }
            Ok(Ok(n)) => n,
        };
        IoSlice::advance_slices(&mut parts, n);
    }
    Ok(())
}

/// Streams the rest of the request body from the client to the upstream,
/// re-framed as `out`, each write within `send_timeout`. The pieces one
/// read from the client brought go in one write (one chunk, towards a
/// chunked upstream body): a body of one-byte chunks is six bytes on the
/// wire for each byte, and passed on piece by piece each byte would cost
/// the proxy a system call and the upstream a TCP segment and a wakeup.
/// `pulled` is set once a body byte has been read from the client (a
/// request that has lost some can no longer be sent again).
pub(crate) async fn upload<S: Source, W: AsyncWrite + Unpin>(
    client: &mut S,
    up: &mut W,
    out: Framing,
    send_timeout: Duration,
    pulled: &mut bool,
) -> Result<(), ProxyError> {
    let mut batch = Batch::default();
    let mut ended = false;
    while let Some(first) = client.next().await? {
        *pulled = true;
        batch.push(first);
        while !batch.is_full() {
            match client.buffered()? {
                Some(piece) => batch.push(piece),
                None => break,
            }
        }
        ended = client.ended();
        let pieces = batch.pending().map_or(&[][..], |p| &p[..]);
        send_pieces(up, out, pieces, ended, send_timeout).await?;
        batch.clear();
    }
    if !ended {
        send_pieces(up, out, &[], true, send_timeout).await?;
    }
    Ok(())
}

/// Writes body pieces as one, with one chunk's framing if `out` is
/// chunked, and the last chunk after them if `last`: one write for the end
/// of a body too.
async fn send_pieces<W: AsyncWrite + Unpin>(
    up: &mut W,
    out: Framing,
    pieces: &[Bytes],
    last: bool,
    send_timeout: Duration,
) -> Result<(), ProxyError> {
    let chunked = out == Framing::Chunked;
    let last = last && chunked;
    if !last && pieces.iter().all(Bytes::is_empty) {
        return Ok(());
    }
    let chunk = chunk_of(chunked, pieces);
    let mut slices = Slices::new(b"", chunk.as_ref(), pieces, last);
    write_upstream(up, slices.as_mut(), send_timeout).await
}

/// The size line of one chunk holding all of `pieces`, if they go out
/// chunked; none for no bytes, since a chunk of size 0 ends a body.
#[inline]
pub(crate) fn chunk_of(chunked: bool, pieces: &[Bytes]) -> Option<ChunkHead> {
    let len = pieces.iter().map(Bytes::len).sum();
    (chunked && len > 0).then(|| chunk_head(len))
}

/// The slices of one write of body pieces, in both directions: `prefix`
/// (a response head not yet written), the pieces framed as one chunk if
/// `chunk` (from [`chunk_of`]), then the last chunk if `last`. No piece
/// or a single one, which every request head and small body is, takes a
/// fixed array; several a list, empty slices left out.
pub(crate) enum Slices<'a> {
    One([IoSlice<'a>; 5]),
    Many(Vec<IoSlice<'a>>),
}

impl<'a> Slices<'a> {
    /// Inlined, as are [`Slices::as_mut`] and [`chunk_of`]: every request
    /// head and every response body comes here, and as calls they cost 0.7 %
    /// more instructions per request (`bench/instructions.sh`).
    #[inline]
    pub(crate) fn new(
        prefix: &'a [u8],
        chunk: Option<&'a ChunkHead>,
        pieces: &'a [Bytes],
        last: bool,
    ) -> Slices<'a> {
        let (head, end): (&[u8], &[u8]) = match chunk {
            Some(c) => (c.as_bytes(), b"\r\n"),
            None => (b"", b""),
        };
        let last: &[u8] = if last { LAST_CHUNK } else { b"" };
        let single: Option<&[u8]> = match pieces {
            [] => Some(b""),
            [one] => Some(one),
            _ => None,
        };
        match single {
            Some(one) => Slices::One([prefix, head, one, end, last].map(IoSlice::new)),
            None => Slices::Many(
                [prefix, head]
                    .into_iter()
                    .chain(pieces.iter().map(|p| &p[..]))
                    .chain([end, last])
                    .filter(|p| !p.is_empty())
                    .map(IoSlice::new)
                    .collect(),
            ),
        }
    }

    #[inline]
    pub(crate) fn as_mut(&mut self) -> &mut [IoSlice<'a>] {
        match self {
            Slices::One(a) => a,
            Slices::Many(v) => v,
        }
    }
}

/// The most body pieces passed on in one write. A system call takes at
/// most 1,024 slices; a client's read of 16 KiB in one-byte chunks holds
/// about 2,700 pieces, which then go in eleven writes, not 2,700.
const MAX_PIECES: usize = 256;

/// Room for the pieces of a batch at first: a read of [`BODY_READ`] holds
/// sixteen 8 KiB chunks (Tomcat's). More grow the list.
const FIRST_PIECES: usize = 16;

/// Body pieces decoded from what is buffered, passed on together. A chunked
/// body (Tomcat sends 8 KiB chunks) decodes into a piece per chunk, and one
/// write for all of them costs the proxy and the receiver one system call
/// and one wakeup instead of one each. A single piece, which every small
/// body is, needs no allocation.
#[derive(Default)]
struct Batch {
    one: Option<Bytes>,
    many: Vec<Bytes>,
}

impl Batch {
    fn push(&mut self, piece: Bytes) {
        match self.one.take() {
            None if self.many.is_empty() => self.one = Some(piece),
            Some(first) => {
                self.many.reserve(FIRST_PIECES);
                self.many.extend([first, piece]);
            }
            None => self.many.push(piece),
        }
    }

    fn is_full(&self) -> bool {
        self.many.len() >= MAX_PIECES
    }

    /// The pieces gathered, if any.
    fn pending(&mut self) -> Option<&mut [Bytes]> {
        match &mut self.one {
            Some(piece) => Some(std::slice::from_mut(piece)),
            None if self.many.is_empty() => None,
            None => Some(&mut self.many),
        }
    }

    fn clear(&mut self) {
        self.one = None;
        self.many.clear();
    }
}

/// Streams the response body from the upstream (`buf` holds what was read
/// past the head) to the client, until `decoder` says it has ended. Each
/// read has `read_timeout`, on the kept `timer` (see [`crate::timer`]).
pub(crate) async fn download<R: AsyncRead + Unpin, K: Sink>(
    up: &mut R,
    buf: &mut BytesMut,
    decoder: &mut Decoder,
    client: &mut K,
    read_timeout: Duration,
    mut timer: Pin<&mut Kept>,
) -> Result<(), ProxyError> {
    let mut batch = Batch::default();
    loop {
        let read = match decoder.decode(buf) {
            Ok(Decoded::Data(b)) => {
                batch.push(b);
                // The next chunks of a chunked body may be in `buf` already.
                if !buf.is_empty() && !batch.is_full() {
                    continue;
                }
                false
            }
            Ok(Decoded::End) => false,
            Ok(Decoded::NeedMore) => true,
            Err(_) => {
                return Err(ProxyError::upstream(ErrorKind::BadResponse(
                    BadResponse::BadBody,
                )))
            }
        };
        if let Some(pieces) = batch.pending() {
            client.data(pieces).await?;
            batch.clear();
        }
        if decoder.is_done() {
            return Ok(());
        }
        if read {
            let at = crate::clock::now() + read_timeout;
            let read = read_room(up, buf, BODY_READ);
            let Some(n) = crate::timer::until(timer.as_mut(), at, read).await else {
                return Err(ProxyError::upstream(ErrorKind::ReadTimeout));
            };
            if n? == 0 {
                return decoder.at_eof().map_err(|_| {
                    ProxyError::upstream(ErrorKind::BadResponse(BadResponse::BadBody))
                });
            }
        }
    }
}
