//! The byte stream under hyper's HTTP/2 server, watched: it replays the
//! bytes read before the protocol was known, tells the driver when the
//! preface and first SETTINGS frame have arrived (the HTTP/2 "head", RFC
//! 9113 §3.4), and fails a write the client has not taken for
//! `client_send_timeout`, so a client that stops reading cannot hold the
//! connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Sleep;

/// What the connection driver learns from the stream and the service.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    ready: AtomicBool,
    open: AtomicU32,
    pub(crate) notify: Notify,
}

impl Watch {
    pub(crate) fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub(crate) fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }
}

/// One open stream, counted until dropped (with its response body).
#[derive(Debug)]
pub(crate) struct StreamGuard(Arc<Watch>);

impl StreamGuard {
    pub(crate) fn new(w: Arc<Watch>) -> StreamGuard {
        w.open.fetch_add(1, Ordering::Relaxed);
        w.notify.notify_one();
        StreamGuard(w)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.notify.notify_one();
    }
}

/// Counts the preface (24 bytes) and the first frame (9 + length bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PrefaceScan {
    head: [u8; 33],
    seen: usize,
}

const PREFACE: usize = 24;

impl Default for PrefaceScan {
    fn default() -> PrefaceScan {
        PrefaceScan {
            head: [0; 33],
            seen: 0,
        }
    }
}

impl PrefaceScan {
    /// Feeds bytes read; true once the preface and the whole first frame are in.
    pub(crate) fn feed(&mut self, got: &[u8]) -> bool {
        for &b in got {
            if self.seen < self.head.len() {
                self.head[self.seen] = b;
            }
            self.seen += 1;
        }
        self.seen >= self.head.len() && self.seen >= self.need()
    }

    fn need(&self) -> usize {
        let h = &self.head[PREFACE..PREFACE + 3];
        let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        PREFACE + 9 + len
    }
}

/// The watched stream.
pub(crate) struct H2Io<I> {
    inner: I,
    prefix: BytesMut,
    scan: Option<PrefaceScan>,
    watch: Arc<Watch>,
    send_timeout: Duration,
    stall: Option<Pin<Box<Sleep>>>,
}

impl<I> H2Io<I> {
    pub(crate) fn new(
        inner: I,
        prefix: BytesMut,
        watch: Arc<Watch>,
        send_timeout: Duration,
    ) -> H2Io<I> {
        H2Io {
            inner,
            prefix,
            scan: Some(PrefaceScan::default()),
            watch,
            send_timeout,
            stall: None,
        }
    }

    fn scanned(&mut self, got: &[u8]) {
        if let Some(s) = self.scan.as_mut() {
            if s.feed(got) {
                self.scan = None;
                self.watch.ready.store(true, Ordering::Relaxed);
                self.watch.notify.notify_one();
            }
        }
    }

    /// A write that stays pending for `send_timeout` fails.
    fn stalled<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let t = self.send_timeout;
        let sleep = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(t)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client_send_timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for H2Io<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            let chunk = this.prefix.split_to(n);
            buf.put_slice(&chunk);
            this.scanned(&chunk);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), true) = (&r, this.scan.is_some()) {
            this.scanned(&buf.filled()[before..]);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for H2Io<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.stalled(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.stalled(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.stalled(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_and_first_frame() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let mut s = PrefaceScan::default();
        assert!(!s.feed(preface));
        // An empty SETTINGS frame completes the head.
        assert!(s.feed(&[0, 0, 0, 4, 0, 0, 0, 0, 0]));
        // A SETTINGS frame with one setting (6 bytes), fed byte by byte.
        let mut s = PrefaceScan::default();
        s.feed(preface);
        let frame = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        let done: Vec<bool> = frame.iter().map(|b| s.feed(&[*b])).collect();
        assert_eq!(done.iter().position(|d| *d), Some(frame.len() - 1));
    }
}
