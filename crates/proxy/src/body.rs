//! Streaming bodies with limits, in both directions; nothing is buffered whole.
//!
//! - [`ReqBody`]: the client's request body on its way upstream, counting
//!   bytes against `client_max_body_size` and timing the pauses between
//!   frames against `client_body_timeout`.
//! - [`RespBody`]: what the client receives — an upstream body (with a
//!   `read_timeout` between frames, and the upstream connection returned to
//!   the pool at its end) or a short error text. Dropping it, finished or
//!   not, runs [`Finish`]: metrics, access log, in-flight count.
//!
//! Timers are allocated only when a poll actually has to wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::access::Finish;
use crate::pool::Conn;
use crate::upstream::ServerState;

/// Why a body stream stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than client_max_body_size")]
    TooLarge,
    #[error("the client paused longer than client_body_timeout")]
    ClientTimeout,
    #[error("the upstream paused longer than read_timeout")]
    UpstreamTimeout,
    #[error("{0}")]
    Hyper(#[from] hyper::Error),
}

/// A deadline re-armed after each frame, allocated on first wait.
#[derive(Debug, Default)]
struct IdleTimer {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl IdleTimer {
    fn frame_arrived(&mut self) {
        self.armed = false;
    }

    /// Called when the inner body is pending: true once `idle` has passed without a frame.
    fn expired(&mut self, idle: Duration, cx: &mut Context<'_>) -> bool {
        let deadline = Instant::now() + idle;
        if !self.armed {
            self.armed = true;
            match &mut self.sleep {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        self.sleep
            .as_mut()
            .is_some_and(|s| s.as_mut().poll(cx).is_ready())
    }
}

/// The body sent upstream.
#[derive(Debug)]
pub enum ReqBody {
    Empty,
    Client(ClientBody),
}

#[derive(Debug)]
pub struct ClientBody {
    inner: Incoming,
    progress: Arc<Progress>,
    /// 0: no limit.
    limit: u64,
    seen: u64,
    idle: Duration,
    timer: IdleTimer,
}

// === impl ReqBody ===

impl ReqBody {
    pub fn client(inner: Incoming, limit: u64, idle: Duration) -> ReqBody {
        ReqBody::Client(ClientBody {
            inner,
            progress: Arc::new(Progress::default()),
            limit,
            seen: 0,
            idle,
            timer: IdleTimer::default(),
        })
    }

    /// How far the upload got, for upstream timeouts; `None` without a body.
    pub fn progress(&self) -> Option<Arc<Progress>> {
        match self {
            ReqBody::Empty => None,
            ReqBody::Client(c) => Some(c.progress.clone()),
        }
    }
}

/// When the last request-body frame went upstream, and whether it was the last.
///
/// nginx starts `proxy_read_timeout` once the request is sent and applies
/// `proxy_send_timeout` between writes while it is being sent; the sender
/// polls this to do the same.
#[derive(Debug, Default)]
pub struct Progress(AtomicU64);

const DONE: u64 = 1 << 63;

impl Progress {
    fn frame(&self, last: bool) {
        let now = crate::clock::now_ms();
        self.0
            .store(if last { now | DONE } else { now }, Ordering::Relaxed);
    }

    /// (ms of the last frame on [`crate::clock::now_ms`]'s scale, whether the body is complete).
    pub fn get(&self) -> (u64, bool) {
        let v = self.0.load(Ordering::Relaxed);
        (v & !DONE, v & DONE != 0)
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let c = match self.get_mut() {
            ReqBody::Empty => return Poll::Ready(None),
            ReqBody::Client(c) => c,
        };
        match Pin::new(&mut c.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                c.timer.frame_arrived();
                c.progress.frame(c.inner.is_end_stream());
                if let Some(d) = frame.data_ref() {
                    c.seen += d.len() as u64;
                    if c.limit > 0 && c.seen > c.limit {
                        return Poll::Ready(Some(Err(BodyError::TooLarge)));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if c.timer.expired(c.idle, cx) => {
                Poll::Ready(Some(Err(BodyError::ClientTimeout)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Client(c) => c.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Client(c) => c.inner.size_hint(),
        }
    }
}

/// The body sent to the client.
pub struct RespBody {
    inner: RespInner,
    finish: Option<Finish>,
}

enum RespInner {
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

struct UpstreamBody {
    body: Incoming,
    idle: Duration,
    timer: IdleTimer,
    /// Returned to the server's pool when the body ends cleanly.
    conn: Option<(Conn, Arc<ServerState>, usize)>,
}

// === impl RespBody ===

impl RespBody {
    pub fn full(bytes: Bytes, finish: Option<Finish>) -> RespBody {
        RespBody {
            inner: RespInner::Full(Some(bytes)),
            finish,
        }
    }

    /// `conn` goes back to `server`'s pool (capped at `keep`) once the body ends.
    pub fn upstream(
        body: Incoming,
        idle: Duration,
        conn: Option<(Conn, Arc<ServerState>, usize)>,
        finish: Finish,
    ) -> RespBody {
        RespBody {
            inner: RespInner::Upstream(UpstreamBody {
                body,
                idle,
                timer: IdleTimer::default(),
                conn,
            }),
            finish: Some(finish),
        }
    }

    fn done(&mut self, mut complete: bool) {
        if let RespInner::Upstream(u) = &mut self.inner {
            // hyper never polls a body that is empty from the start (HEAD, 204, 304).
            complete |= u.body.is_end_stream();
            if let Some((c, server, keep)) = u.conn.take() {
                if complete {
                    server.pool.put(c, keep);
                }
            }
        }
        if let Some(f) = self.finish.take() {
            f.done(complete);
        }
    }
}

impl Drop for RespBody {
    fn drop(&mut self) {
        self.done(false);
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            RespInner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespInner::Upstream(u) => match Pin::new(&mut u.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => {
                    u.timer.frame_arrived();
                    Poll::Ready(Some(Ok(f)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Hyper(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending if u.timer.expired(u.idle, cx) => {
                    Poll::Ready(Some(Err(BodyError::UpstreamTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        };
        match &polled {
            Poll::Ready(Some(Ok(f))) => {
                if let (Some(fin), Some(d)) = (this.finish.as_mut(), f.data_ref()) {
                    fin.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None) => this.done(true),
            Poll::Ready(Some(Err(_))) => this.done(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            RespInner::Full(b) => b.is_none(),
            RespInner::Upstream(u) => u.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            RespInner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespInner::Upstream(u) => u.body.size_hint(),
        }
    }
}
