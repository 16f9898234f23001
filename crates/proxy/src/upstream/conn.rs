//! One HTTP/1.1 connection to an upstream server, driven inline on the
//! request's own task (no connection task, no channel): the socket and the
//! bytes read past the last response head.
//!
//! A connection goes back to its pool only through [`Lease::release`],
//! and only when [`End::reusable`] says both directions finished cleanly.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use http::Method;
use stackd_common::tcp::Tcp;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;

use super::server::ServerState;
use crate::body::{read_room, HEAD_READ};
use crate::codec::response::{self, Parsed, ResponseHead};
use crate::codec::BadResponse;
use crate::error::{ErrorKind, ProxyError};

/// Interim (1xx) responses skipped before a final one, at most.
const MAX_INTERIM: usize = 8;

/// A connection to an upstream server.
#[derive(Debug)]
pub(crate) struct UpstreamConn {
    /// Read and written with direct system calls ([`stackd_common::tcp`]).
    pub(crate) stream: Tcp,
    /// Bytes read but not yet consumed.
    pub(crate) buf: BytesMut,
    /// Taken from the pool (it may have been closed by the server meanwhile).
    pub(crate) reused: bool,
}

// === impl UpstreamConn ===

impl UpstreamConn {
    /// Opens a new connection to `addr` within `timeout`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<UpstreamConn, ProxyError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(ProxyError::upstream(ErrorKind::ConnectTimeout)),
            Ok(Err(e)) => return Err(ProxyError::upstream(ErrorKind::Connect(e))),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(UpstreamConn {
            stream: Tcp::new(stream),
            buf: BytesMut::new(),
            reused: false,
        })
    }

    /// Whether an idle connection is still open and silent: a server that
    /// closed it, or sent bytes nobody asked for, makes it unusable. Costs
    /// no system call when the socket has not been readable since its last read.
    pub(crate) fn alive(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.get_ref().try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Reads the final response head for a request with `method` from `rd`,
/// skipping interim 1xx answers; the head's bytes are consumed from `buf`.
/// No timeout here: the caller bounds the wait (`read_timeout` once the
/// request is sent).
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    method: &Method,
    max: usize,
) -> Result<ResponseHead, ProxyError> {
    let bad = |b: BadResponse| ProxyError::upstream(ErrorKind::BadResponse(b));
    let mut interim = 0;
    loop {
        match response::parse(buf, max, method).map_err(bad)? {
            Parsed::Head(h) => return Ok(h),
            Parsed::Interim if interim < MAX_INTERIM => {
                interim += 1;
                continue;
            }
            Parsed::Interim => return Err(bad(BadResponse::BadHead)),
            Parsed::Partial => {}
        }
        if read_room(rd, buf, HEAD_READ).await? == 0 {
            return Err(if buf.is_empty() {
                ProxyError::upstream(ErrorKind::UpstreamIo(io::ErrorKind::UnexpectedEof.into()))
            } else {
                bad(BadResponse::BadHead)
            });
        }
    }
}

/// How an exchange on an upstream connection ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct End {
    /// The whole request body went out.
    pub(crate) request_sent: bool,
    /// The whole response was read, and its framing held.
    pub(crate) response_read: bool,
    /// The server allows reuse (HTTP/1.1 without `close`, a delimited body).
    pub(crate) server_keeps: bool,
}

impl End {
    /// Reuse only when both directions are done and the server agrees.
    pub(crate) fn reusable(&self) -> bool {
        self.request_sent && self.response_read && self.server_keeps
    }
}

/// A connection checked out for one exchange. Dropping it closes the
/// connection; only [`Lease::release`] can put it back in the pool.
///
/// It borrows its server rather than holding an `Arc`: both workers send
/// requests to every server, and a clone and a drop per request write
/// the count's cache line (with the server's state read beside it) from
/// both cores. An upgrade's tunnel keeps only the connection.
#[derive(Debug)]
pub(crate) struct Lease<'s> {
    pub(crate) conn: UpstreamConn,
    pub(crate) server: &'s ServerState,
}

impl Lease<'_> {
    /// Returns the connection to its server's pool (up to `cap` idle per
    /// worker) if `end` allows it and nothing was left unread; closes it otherwise.
    pub(crate) fn release(mut self, end: End, cap: usize) {
        if end.reusable() && self.conn.buf.is_empty() {
            self.conn.reused = true;
            // The next exchange reuses the buffer; a big one (a large head
            // or body came through) is not worth keeping idle.
            if self.conn.buf.capacity() > 4 * HEAD_READ {
                self.conn.buf = BytesMut::new();
            }
            self.server.pool().put(self.conn, cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_needs_both_directions_and_the_servers_consent() {
        let all = End {
            request_sent: true,
            response_read: true,
            server_keeps: true,
        };
        assert!(all.reusable());
        for e in [
            End {
                request_sent: false,
                ..all
            },
            End {
                response_read: false,
                ..all
            },
            End {
                server_keeps: false,
                ..all
            },
        ] {
            assert!(!e.reusable(), "{e:?}");
        }
    }
}
