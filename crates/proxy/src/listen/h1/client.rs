//! The HTTP/1 client side of one exchange ([`crate::request::Client`]): the body
//! read through our decoder under `client_body_timeout` and the minimum
//! rate, the response written under `client_send_timeout`, every step
//! reported to the connection's [`Lifecycle`].

use std::io::IoSlice;

use bytes::{Bytes, BytesMut};
use http::Version;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::super::io::ClientIo;
use super::super::lifecycle::{Event, Lifecycle, Next, Timer};
use super::super::Ctx;
use crate::body::{self, Sink, Source};
use crate::codec::framing::{Decoded, Decoder, Framing, LAST_CHUNK};
use crate::codec::write::{self, BodyHeader, ConnectionHeader, CONTINUE};
use crate::error::{ErrorKind, ProxyError};
use crate::request::{Answer, Client};

/// Room for one read of a request body. Each read is a write to the
/// upstream too, and a TCP segment and a wakeup for it: 64 KiB in 4 KiB
/// chunks (Java's chunked streaming mode) goes through in two reads
/// instead of five, at 0.78x the CPU per request of 16 KiB reads
/// (docs/BENCHMARKS.md, "What each lever bought"). Only a body in flight
/// holds it (64 uploads at once: 4.7 MiB more peak RSS): after a body
/// larger than [`SMALL_BODY`] the connection starts again from an empty
/// buffer.
const BODY_READ: usize = 64 * 1024;

/// Whether reading a body so framed can have grown the buffer past
/// [`SMALL_BODY`].
pub(super) fn may_have_grown(framing: Framing) -> bool {
    match framing {
        Framing::Empty => false,
        Framing::Length(n) => n > SMALL_BODY,
        Framing::Chunked | Framing::Close => true,
    }
}

/// A body this small grows a connection's buffer to at most 16 KiB more,
/// which it may keep for the requests after it.
const SMALL_BODY: u64 = 16 * 1024;

/// How the response body goes to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// No head yet.
    NotStarted,
    /// Bytes as they come (`Content-Length`, or until the close).
    Plain,
    Chunked,
}

/// One exchange's client side on an HTTP/1 connection.
pub(crate) struct H1Client<'a> {
    pub(crate) io: &'a mut ClientIo,
    /// Bytes read from the client and not yet consumed.
    pub(crate) buf: &'a mut BytesMut,
    pub(crate) life: &'a mut Lifecycle,
    ctx: &'a Ctx,
    framing: Framing,
    decoder: Decoder,
    /// `client_max_body_size`; 0: none.
    pub(crate) max_body: u64,
    seen: u64,
    /// `Expect: 100-continue` not yet answered.
    pub(crate) expect_continue: bool,
    pub(crate) version: Version,
    out: Out,
    /// A response head not yet written (it goes out with the first body bytes).
    pending: Vec<u8>,
}

// === impl H1Client ===

impl<'a> H1Client<'a> {
    pub(crate) fn new(
        io: &'a mut ClientIo,
        buf: &'a mut BytesMut,
        life: &'a mut Lifecycle,
        ctx: &'a Ctx,
        framing: Framing,
    ) -> H1Client<'a> {
        H1Client {
            io,
            buf,
            life,
            ctx,
            framing,
            decoder: Decoder::new(framing),
            max_body: 0,
            seen: 0,
            expect_continue: false,
            version: Version::HTTP_11,
            out: Out::NotStarted,
            pending: Vec::new(),
        }
    }

    /// Counts body bytes against the limit and the lifecycle's pace.
    fn got(&mut self, b: &Bytes) -> Result<(), ProxyError> {
        self.seen += b.len() as u64;
        if self.max_body > 0 && self.seen > self.max_body {
            return Err(ProxyError::client(ErrorKind::BodyTooLarge));
        }
        self.life
            .step(Event::BodyBytes(b.len() as u64), crate::clock::now());
        if self.decoder.is_done() {
            self.life.step(Event::BodyDone, crate::clock::now());
        }
        Ok(())
    }

    /// The deadline now; an expiry is counted under its timer.
    fn deadline(&self) -> (Instant, Option<Timer>) {
        self.life
            .deadline()
            .map_or_else(|| (far(), None), |(at, t)| (at, Some(t)))
    }

    fn expired(&mut self, timer: Option<Timer>) {
        if let Some(t) = timer {
            self.ctx.count_timeout(t);
        }
        self.life.step(Event::Expired, crate::clock::now());
    }

    /// Reads more of the request within the lifecycle's deadline.
    async fn fill(&mut self) -> Result<(), ProxyError> {
        if self.expect_continue && self.buf.is_empty() {
            self.expect_continue = false;
            self.write_all(&mut [IoSlice::new(CONTINUE)]).await?;
        }
        let (at, timer) = self.deadline();
        let want = self.room_wanted();
        if self.buf.capacity() - self.buf.len() < want.div_ceil(4) {
            self.buf.reserve(want);
        }
        match tokio::time::timeout_at(at, self.io.read_buf(self.buf)).await {
            Err(_) => {
                self.expired(timer);
                Err(ProxyError::client(ErrorKind::ClientTimeout))
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.life.step(Event::PeerGone, crate::clock::now());
                Err(ProxyError::client(ErrorKind::ClientGone))
            }
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Room for the next read of the body: what is left of a body of known
    /// length, up to [`BODY_READ`].
    fn room_wanted(&self) -> usize {
        match self.framing {
            Framing::Length(n) => usize::try_from(n.saturating_sub(self.seen))
                .unwrap_or(usize::MAX)
                .clamp(1, BODY_READ),
            _ => BODY_READ,
        }
    }

    /// Writes all of `parts` within `client_send_timeout` of the last progress.
    async fn write_all(&mut self, parts: &mut [IoSlice<'_>]) -> Result<(), ProxyError> {
        let gone = || ProxyError::client(ErrorKind::ClientGone);
        let mut parts = parts;
        while !parts.is_empty() {
            let (at, timer) = self.deadline();
            let n = match crate::body::before(at, self.io.write_vectored(parts)).await {
                Err(_) => {
                    self.expired(timer);
                    return Err(gone());
                }
                Ok(Ok(0)) | Ok(Err(_)) => return Err(gone()),
                Ok(Ok(n)) => n,
            };
            self.life.step(Event::Wrote, crate::clock::now());
            IoSlice::advance_slices(&mut parts, n);
        }
        let at = self.life.deadline().map_or_else(far, |(at, _)| at);
        match crate::body::before(at, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(gone()),
        }
    }

    /// The response's framing towards this client, and its `Connection` field.
    fn framing_for(&self, a: &Answer<'_>) -> (BodyHeader, Out) {
        if a.upgrade || !a.body {
            return (
                a.length.map_or(BodyHeader::None, BodyHeader::Length),
                Out::Plain,
            );
        }
        match a.length {
            Some(n) => (BodyHeader::Length(n), Out::Plain),
            None if self.version == Version::HTTP_11 => (BodyHeader::Chunked, Out::Chunked),
            // HTTP/1.0 has no chunking: the body runs until we close.
            None => (BodyHeader::None, Out::Plain),
        }
    }

    fn connection_header(&self, upgrade: bool) -> ConnectionHeader {
        match (upgrade, self.life.next(), self.version) {
            (true, _, _) => ConnectionHeader::Upgrade,
            (_, Next::Close, _) => ConnectionHeader::Close,
            (_, Next::KeepAlive, Version::HTTP_10) => ConnectionHeader::KeepAlive,
            _ => ConnectionHeader::Default,
        }
    }
}

fn far() -> Instant {
    crate::clock::now() + std::time::Duration::from_secs(86_400 * 365)
}

impl Source for H1Client<'_> {
    async fn next(&mut self) -> Result<Option<Bytes>, ProxyError> {
        loop {
            match self.decoder.decode(self.buf) {
                Ok(Decoded::Data(b)) => {
                    self.got(&b)?;
                    return Ok(Some(b));
                }
                Ok(Decoded::End) => {
                    self.life.step(Event::BodyDone, crate::clock::now());
                    return Ok(None);
                }
                Ok(Decoded::NeedMore) => self.fill().await?,
                Err(_) => return Err(ProxyError::client(ErrorKind::BadBody)),
            }
        }
    }

    fn buffered(&mut self) -> Result<Option<Bytes>, ProxyError> {
        match self.decoder.decode(self.buf) {
            Ok(Decoded::Data(b)) => {
                self.got(&b)?;
                Ok(Some(b))
            }
            Ok(Decoded::End | Decoded::NeedMore) => Ok(None),
            Err(_) => Err(ProxyError::client(ErrorKind::BadBody)),
        }
    }

    fn ended(&self) -> bool {
        self.decoder.is_done()
    }
}

impl Sink for H1Client<'_> {
    /// Several pieces go out as one chunk (or, unchunked, back to back) in
    /// one write.
    async fn data(&mut self, pieces: &mut [Bytes]) -> Result<(), ProxyError> {
        let head = std::mem::take(&mut self.pending);
        let chunk = body::chunk_of(self.out == Out::Chunked, pieces);
        let mut slices = body::Slices::new(&head, chunk.as_ref(), pieces, false);
        self.write_all(slices.as_mut()).await
    }
}

impl Client for H1Client<'_> {
    fn take_buffered(&mut self) -> Option<Bytes> {
        // Only a Content-Length body: its limit was checked against the
        // declared length; chunked bytes go through `next` and its limit.
        if !matches!(self.framing, Framing::Length(_))
            || self.decoder.is_done()
            || self.buf.is_empty()
        {
            return None;
        }
        match self.decoder.decode(self.buf) {
            Ok(Decoded::Data(b)) => {
                self.got(&b).ok()?;
                Some(b)
            }
            _ => None,
        }
    }

    fn body_done(&self) -> bool {
        self.decoder.is_done()
    }

    async fn head(&mut self, a: Answer<'_>) -> Result<(), ProxyError> {
        let now = crate::clock::now();
        if self.ctx.draining() {
            self.life.step(Event::Drain, now);
        }
        let (body, out) = self.framing_for(&a);
        let close_delimited = a.body && body == BodyHeader::None && !a.upgrade;
        self.life.step(
            Event::Respond {
                close: close_delimited,
            },
            now,
        );
        let date = crate::clock::http_date();
        let conn = self.connection_header(a.upgrade);
        self.pending.reserve(256);
        let date = (!a.has_date()).then_some(&date[..]);
        write::response_head(&mut self.pending, a.status, a.fields(), body, conn, date);
        self.out = out;
        if !a.body {
            let head = std::mem::take(&mut self.pending);
            self.write_all(&mut [IoSlice::new(&head)]).await?;
        }
        Ok(())
    }

    async fn end(&mut self) -> Result<(), ProxyError> {
        let head = std::mem::take(&mut self.pending);
        let last = if self.out == Out::Chunked {
            LAST_CHUNK
        } else {
            b""
        };
        if head.is_empty() && last.is_empty() {
            return Ok(());
        }
        self.write_all(&mut [IoSlice::new(&head), IoSlice::new(last)])
            .await
    }

    async fn fail(&mut self, e: &ProxyError) -> bool {
        if self.out != Out::NotStarted || matches!(e.kind, ErrorKind::ClientGone) {
            return false;
        }
        let now = crate::clock::now();
        if self.ctx.draining() {
            self.life.step(Event::Drain, now);
        }
        self.life.step(Event::Respond { close: false }, now);
        let close = self.life.next() == Next::Close;
        let bytes =
            write::short_response(e.status(), e.reason(), close, &crate::clock::http_date());
        self.out = Out::Plain;
        self.write_all(&mut [IoSlice::new(&bytes)]).await.is_ok()
    }
}
