//! The HTTP/2 client side of one exchange ([`crate::request::Client`]): hyper's
//! request body read frame by frame under the body deadlines, and the
//! response handed to hyper as a head and a bounded channel of body
//! pieces. A client that stops taking a stream's data (flow control)
//! stops the channel, and `client_send_timeout` ends the stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{mpsc, oneshot};

use super::io::StreamGuard;
use crate::body::{BodyLimits, Pace, Sink, Source};
use crate::error::{ErrorKind, ProxyError};
use crate::request::{Answer, Client};

/// A response body piece on its way to hyper.
#[derive(Debug)]
pub(crate) enum Msg {
    Data(Bytes),
    End,
    Abort,
}

/// A response head for the service to return.
pub(crate) type Head = (StatusCode, HeaderMap, Kind);

/// One exchange's client side on an HTTP/2 stream.
pub(crate) struct H2Client {
    body: Incoming,
    pace: Pace,
    limits: BodyLimits,
    max_body: u64,
    seen: u64,
    done: bool,
    send_timeout: Duration,
    head: Option<oneshot::Sender<Head>>,
    data: Option<mpsc::Sender<Msg>>,
}

// === impl H2Client ===

impl H2Client {
    pub(crate) fn new(
        body: Incoming,
        limits: BodyLimits,
        max_body: u64,
        send_timeout: Duration,
        head: oneshot::Sender<Head>,
    ) -> H2Client {
        H2Client {
            done: body.is_end_stream(),
            body,
            pace: Pace::start(crate::clock::now()),
            limits,
            max_body,
            seen: 0,
            send_timeout,
            head: Some(head),
            data: None,
        }
    }

    async fn send(&mut self, m: Msg) -> Result<(), ProxyError> {
        let gone = || ProxyError::client(ErrorKind::ClientGone);
        let tx = self.data.as_ref().ok_or_else(gone)?;
        match tokio::time::timeout(self.send_timeout, tx.send(m)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(gone()),
        }
    }

    /// One frame of the request body: its data, counted against the
    /// limits; `None` for trailers and the end.
    fn take(
        &mut self,
        frame: Option<Result<Frame<Bytes>, hyper::Error>>,
    ) -> Result<Option<Bytes>, ProxyError> {
        let frame = match frame {
            None => None,
            Some(Err(_)) => return Err(ProxyError::client(ErrorKind::ClientGone)),
            Some(Ok(f)) => Some(f),
        };
        self.done = frame.is_none() || self.body.is_end_stream();
        let Some(Ok(data)) = frame.map(Frame::into_data) else {
            return Ok(None); // trailers, or the end
        };
        self.seen += data.len() as u64;
        if self.max_body > 0 && self.seen > self.max_body {
            return Err(ProxyError::client(ErrorKind::BodyTooLarge));
        }
        self.pace = self.pace.add(data.len() as u64, crate::clock::now());
        Ok(Some(data))
    }
}

impl Source for H2Client {
    async fn next(&mut self) -> Result<Option<Bytes>, ProxyError> {
        while !self.done {
            let (at, _) = self.pace.deadline(&self.limits);
            let frame = match tokio::time::timeout_at(at, self.body.frame()).await {
                Err(_) => return Err(ProxyError::client(ErrorKind::ClientTimeout)),
                Ok(frame) => frame,
            };
            if let Some(data) = self.take(frame)? {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// DATA frames that came in the same read as the last one (hyper has
    /// them queued): polled once, without waiting.
    fn buffered(&mut self) -> Result<Option<Bytes>, ProxyError> {
        while !self.done {
            let Some(frame) = self.body.frame().now_or_never() else {
                return Ok(None);
            };
            if let Some(data) = self.take(frame)? {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    fn ended(&self) -> bool {
        self.done
    }
}

impl Sink for H2Client {
    async fn data(&mut self, pieces: &mut [Bytes]) -> Result<(), ProxyError> {
        // Each piece its own DATA frames: the stream's writer sends them
        // under HTTP/2's flow control.
        for piece in pieces {
            self.send(Msg::Data(std::mem::take(piece))).await?;
        }
        Ok(())
    }
}

impl Client for H2Client {
    fn take_buffered(&mut self) -> Option<Bytes> {
        None
    }

    fn body_done(&self) -> bool {
        self.done
    }

    async fn head(&mut self, a: Answer<'_>) -> Result<(), ProxyError> {
        let mut headers = a.map();
        if let Some(n) = a.length {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        let kind = if a.body {
            let (tx, rx) = mpsc::channel(2);
            self.data = Some(tx);
            Kind::Stream {
                rx,
                length: a.length,
            }
        } else {
            Kind::Empty
        };
        let tx = self
            .head
            .take()
            .ok_or(ProxyError::client(ErrorKind::ClientGone))?;
        tx.send((a.status, headers, kind))
            .map_err(|_| ProxyError::client(ErrorKind::ClientGone))
    }

    async fn end(&mut self) -> Result<(), ProxyError> {
        if self.data.is_some() {
            self.send(Msg::End).await?;
        }
        Ok(())
    }

    async fn fail(&mut self, e: &ProxyError) -> bool {
        match self.head.take() {
            Some(tx) => tx.send(error_head(e)).is_ok(),
            None => {
                if let Some(tx) = self.data.take() {
                    let _ = tx.try_send(Msg::Abort);
                }
                false
            }
        }
    }
}

/// Our short answer for `e`, as a response head and body.
pub(crate) fn error_head(e: &ProxyError) -> Head {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let status = if e.status().as_u16() == 499 {
        StatusCode::BAD_REQUEST
    } else {
        e.status()
    };
    (
        status,
        h,
        Kind::Full(Some(Bytes::from_static(e.reason().as_bytes()))),
    )
}

/// A response body as hyper sees it.
#[derive(Debug)]
pub(crate) enum Kind {
    Empty,
    Full(Option<Bytes>),
    Stream {
        rx: mpsc::Receiver<Msg>,
        length: Option<u64>,
    },
}

/// The response body, holding its stream open in the connection's count.
#[derive(Debug)]
pub(crate) struct H2Body {
    pub(crate) kind: Kind,
    pub(crate) _stream: StreamGuard,
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream { rx, .. } => match rx.poll_recv(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Msg::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(Some(Msg::End)) => {
                    this.kind = Kind::Empty;
                    Poll::Ready(None)
                }
                // Cut short: hyper resets the stream instead of ending it cleanly.
                Poll::Ready(Some(Msg::Abort) | None) => Poll::Ready(Some(Err(
                    std::io::Error::other("upstream response cut short"),
                ))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(b) => b.is_none(),
            Kind::Stream { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream {
                length: Some(n), ..
            } => SizeHint::with_exact(*n),
            Kind::Stream { .. } => SizeHint::default(),
        }
    }
}

/// Builds the response hyper sends.
pub(crate) fn response(head: Head, stream: StreamGuard) -> Response<H2Body> {
    let (status, headers, kind) = head;
    let mut r = Response::new(H2Body {
        kind,
        _stream: stream,
    });
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}
