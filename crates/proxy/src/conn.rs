//! Per-connection state and the client-side timeouts hyper does not give us.
//!
//! hyper's `header_read_timeout` closes a slow connection without a
//! response, and also cuts idle keep-alive connections at the header
//! timeout. nginx answers a slowloris with 408 and keeps idle connections
//! for `keepalive_timeout`. [`ConnIo`] wraps the client stream and does
//! both: it knows from its own reads when the next request head starts, and
//! from [`ConnInfo`] (set by the service and by the response body's end)
//! when a request is in progress or the connection is idle.
//!
//! ```text
//!   accept ──► Head ──(service called)──► Busy ──(response body done)──► Idle
//!               ▲ header_timeout: 408        no timer here                │ keepalive_timeout: close
//!               └───────────────────(first byte of the next request)─────┘
//! ```
//!
//! HTTP/2 connections (prior knowledge or ALPN) skip this: streams interleave
//! and h2 has its own keep-alive.
//!
//! Parking: hyper keeps ~12 KB of read and write buffers, plus ~5 KB of
//! connection state, for as long as a connection lives, idle or not. nginx
//! frees its buffers on idle keep-alive connections. A plain HTTP/1
//! [`ConnIo`] given a [`ParkSlot`] does the same: when the connection has
//! been idle for [`PARK_AFTER`], with nothing in flight and nothing buffered
//! on either side, it reports EOF (hyper ends the connection quietly, without
//! a FIN on the socket) and hands the socket back through the slot. The
//! caller waits for the next request's first byte in a small task and then
//! starts a fresh hyper connection on the same socket.
//!
//! "Nothing buffered in hyper" is known without looking inside hyper: every
//! byte we delivered ended with the `\r\n\r\n` that closes a head without a
//! body or a chunked body (RFC 9112 §2.1, §7.1), and hyper only reads when it
//! has no complete message buffered. A pipelined partial request, or a
//! content-length body, leaves the tail elsewhere: no parking then, hyper
//! keeps the connection as before.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;
/// Switched protocols (WebSocket): the stream is no longer HTTP; no timers.
const UPGRADED: u8 = 3;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// The end of a head without a body, or of a chunked body (RFC 9112 §2.1, §7.1).
const CRLFCRLF: u32 = u32::from_be_bytes(*b"\r\n\r\n");

/// How long a connection idles in hyper before it parks. Under load the next
/// request usually comes sooner: parking after every response (a new hyper
/// connection per request) cost ~8% of small-response throughput at 64
/// connections; after 25 ms idle the cost is within noise, and idle memory
/// is 1.85 KiB per connection (100 ms: 3.0 KiB, more hyper connections alive
/// at once while clients connect). The lazy timer makes this at most one
/// timer reset per `PARK_AFTER` per busy connection.
pub const PARK_AFTER: Duration = Duration::from_millis(25);

/// Where a parked connection's socket goes when hyper lets go of it.
pub type ParkSlot<S> = Arc<Mutex<Option<S>>>;

const RESPONSE_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 20\r\nconnection: close\r\n\r\n408 Request Timeout\n";

/// What every request on one client connection shares.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    phase: AtomicU8,
    /// A response body ended early: hyper may not have finished the message; never park.
    aborted: AtomicBool,
    /// The connection task, parked in a read while a request is busy: hyper
    /// does not read again after a response unless woken, and the idle timer
    /// is armed from that read.
    waker: AtomicWaker,
}

// === impl ConnInfo ===

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        ConnInfo {
            peer,
            tls,
            phase: AtomicU8::new(HEAD),
            aborted: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// A request head was parsed: no header timer until the response is done.
    pub fn request_started(&self) {
        self.phase.store(BUSY, Ordering::Relaxed);
    }

    /// The response body ended (`complete`, or dropped early): the connection
    /// idles until the next request.
    pub fn response_done(&self, complete: bool) {
        if !complete {
            self.aborted.store(true, Ordering::Relaxed);
        }
        if self
            .phase
            .compare_exchange(BUSY, IDLE, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.waker.wake();
        }
    }

    /// The upstream agreed to switch protocols; the connection is a tunnel from now on.
    pub fn upgraded(&self) {
        self.phase.store(UPGRADED, Ordering::Relaxed);
    }
}

/// The client stream with header and keep-alive timeouts.
///
/// The timer is re-armed lazily: phase changes only note the time, and the
/// sleep is reset when it must fire earlier than it is set to, or when it
/// fires early. In steady keep-alive traffic that is about one timer
/// operation per `keepalive_timeout`, not two per request.
pub struct ConnIo<S> {
    /// Taken only by `Drop`, to hand a parked socket to the slot.
    inner: Option<S>,
    info: Arc<ConnInfo>,
    header_timeout: Duration,
    keepalive_timeout: Duration,
    timer: Pin<Box<Sleep>>,
    /// The deadline the timer is set to, if it has not fired since.
    armed_at: Option<Instant>,
    /// The phase seen last, and since when.
    seen: u8,
    since: Instant,
    h2: bool,
    first_read: bool,
    /// Set for plain HTTP/1: where the socket goes when the connection parks.
    park: Option<ParkSlot<S>>,
    /// The last four bytes delivered to hyper.
    tail: u32,
    /// Bytes written that no successful flush has followed yet.
    unflushed: bool,
    /// EOF was reported to hyper to park the connection.
    parked: bool,
}

// === impl ConnIo ===

impl<S> ConnIo<S> {
    /// Starts in the head phase: the first request must arrive within `header_timeout`.
    pub fn new(
        inner: S,
        info: Arc<ConnInfo>,
        header_timeout: Duration,
        keepalive_timeout: Duration,
        h2: bool,
    ) -> ConnIo<S> {
        let now = Instant::now();
        ConnIo {
            inner: Some(inner),
            info,
            header_timeout,
            keepalive_timeout,
            timer: Box::pin(tokio::time::sleep_until(now + header_timeout)),
            armed_at: Some(now + header_timeout),
            seen: HEAD,
            since: now,
            h2,
            first_read: true,
            park: None,
            tail: 0,
            unflushed: false,
            parked: false,
        }
    }

    /// Lets the connection park in `slot` when it idles (plain HTTP/1 only).
    pub fn park_in(mut self, slot: ParkSlot<S>) -> ConnIo<S> {
        self.park = Some(slot);
        self
    }

    /// Idle, nothing buffered in hyper, nothing unflushed: hyper may let go.
    fn may_park(&self) -> bool {
        self.park.is_some()
            && !self.h2
            && self.tail == CRLFCRLF
            && !self.unflushed
            && self.info.phase.load(Ordering::Relaxed) == IDLE
            && !self.info.aborted.load(Ordering::Relaxed)
    }

    fn inner(&mut self) -> io::Result<&mut S> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Whether the deadline of the current phase has passed (registers the waker if not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let phase = self.info.phase.load(Ordering::Relaxed);
        if phase != self.seen {
            self.seen = phase;
            self.since = Instant::now();
        }
        let want = match phase {
            HEAD => self.since + self.header_timeout,
            IDLE if self.may_park() => self.since + PARK_AFTER.min(self.keepalive_timeout),
            IDLE => self.since + self.keepalive_timeout,
            BUSY => {
                self.info.waker.register(cx.waker());
                return false;
            }
            _ => return false,
        };
        if self.armed_at.is_none_or(|at| at > want) {
            self.timer.as_mut().reset(want);
            self.armed_at = Some(want);
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        if Instant::now() < want {
            // Fired for an older, earlier deadline: move it and wait again.
            self.timer.as_mut().reset(want);
            self.armed_at = Some(want);
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
        }
        self.armed_at = None;
        true
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ConnIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.parked {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let inner = match this.inner() {
            Ok(i) => i,
            Err(e) => return Poll::Ready(Err(e)),
        };
        match Pin::new(inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                for b in got.iter().skip(got.len().saturating_sub(4)) {
                    this.tail = (this.tail << 8) | u32::from(*b);
                }
                if this.first_read && !got.is_empty() {
                    this.first_read = false;
                    this.h2 |= got.starts_with(H2_PREFACE);
                }
                if !this.h2 && !got.is_empty() && this.info.phase.load(Ordering::Relaxed) == IDLE {
                    // First bytes of the next request: the header clock starts now.
                    this.info.phase.store(HEAD, Ordering::Relaxed);
                    this.seen = HEAD;
                    this.since = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if this.h2 => Poll::Pending,
            Poll::Pending => {
                if !this.expired(cx) {
                    return Poll::Pending;
                }
                if this.may_park() {
                    this.parked = true;
                    return Poll::Ready(Ok(()));
                }
                if this.seen == IDLE || this.first_read {
                    // keepalive_timeout, or a connection that never sent a byte
                    // (browsers' preconnects): a clean EOF lets hyper close quietly,
                    // as nginx does, instead of a 408 nobody asked for.
                    return Poll::Ready(Ok(()));
                }
                // Slowloris: answer 408 best-effort, then fail the read so hyper closes.
                if let Ok(inner) = this.inner() {
                    let _ = Pin::new(&mut *inner).poll_write(cx, RESPONSE_408);
                    let _ = Pin::new(inner).poll_flush(cx);
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client_header_timeout",
                )))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ConnIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.unflushed = true;
        Pin::new(this.inner()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.unflushed = true;
        Pin::new(this.inner()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = ready!(Pin::new(this.inner()?).poll_flush(cx));
        if res.is_ok() && this.unflushed {
            this.unflushed = false;
            if this.may_park() {
                // hyper may have read (and been told Pending) while this was unflushed.
                cx.waker().wake_by_ref();
            }
        }
        Poll::Ready(res)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.parked {
            // The socket lives on in the slot; only hyper's side ends.
            return Poll::Ready(Ok(()));
        }
        Pin::new(this.inner()?).poll_shutdown(cx)
    }
}

impl<S> Drop for ConnIo<S> {
    fn drop(&mut self) {
        if !self.parked {
            return;
        }
        if let (Some(slot), Some(inner)) = (self.park.take(), self.inner.take()) {
            if let Ok(mut s) = slot.lock() {
                *s = Some(inner);
            }
        }
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
