//! One request through the proxy, for either client protocol:
//! [`prepare`] (pure: limits, Host, route, head rewrite) → [`forward`] (pick
//! a server, send, retry, stream the answer back) → [`finish`] (metrics
//! and the access log).
//!
//! The client side is abstract: HTTP/1 (`listen::h1`, our codec on the
//! socket) and HTTP/2 (`listen::h2`, a hyper stream) each implement
//! [`Client`] under their own deadlines, so the exchange is written once.
//!
//! # Layout
//! - [`prepare`]: the pure part, from a parsed head to a [`prepare::Prepared`] request.
//! - [`rewrite`]: hop-by-hop, `Host`, forwarding fields, `Location`.
//! - [`forward`]: the exchange with an upstream, retries included.
//! - [`answer`]: the response head as it goes to the client.
//! - [`finish`]: the end of a request: counters and the log line.

mod answer;
pub(crate) mod finish;
pub(crate) mod forward;
pub(crate) mod prepare;
pub(crate) mod rewrite;
#[cfg(test)]
mod test_heads;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::time::Instant;

use crate::body::{Sink, Source};
use crate::codec::framing::Framing;
use crate::codec::request::Parts;
use crate::error::ProxyError;
use crate::snapshot::Snapshot;
use crate::timer::Kept;
use crate::upstream::conn::UpstreamConn;
pub(crate) use answer::Answer;
use finish::{Finish, Trace};
use rewrite::Peer;

/// The client side of one exchange.
pub(crate) trait Client: Source + Sink + Send {
    /// Request-body bytes that arrived with the head, to go out with the
    /// upstream head; the source continues after them.
    fn take_buffered(&mut self) -> Option<Bytes>;
    /// Whether the request body has been read to its end.
    fn body_done(&self) -> bool;
    /// Sends the response head; the client side picks its own framing.
    fn head(&mut self, answer: Answer<'_>) -> impl Future<Output = Result<(), ProxyError>> + Send;
    /// The response body has ended.
    fn end(&mut self) -> impl Future<Output = Result<(), ProxyError>> + Send;
    /// The request failed: an error response if no head went out yet (true),
    /// else the response is cut short (false).
    fn fail(&mut self, e: &ProxyError) -> impl Future<Output = bool> + Send;
}

/// How a request ended, for the client side's lifecycle.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A complete response went out.
    Done,
    /// An error response went out (the request may be unread).
    Refused,
    /// The response was cut short, or the client went away.
    Aborted,
    /// 101 went out: the connection becomes a tunnel to this upstream connection.
    Upgrade(UpstreamConn),
}

/// Serves one request whose head was parsed at `start`; the wait for
/// the upstream's answer is on `upstream_timer` (see [`crate::timer`]).
///
/// An `async move` block over its arguments rather than an `async fn`,
/// which would hold each argument twice in a future created (and so
/// copied whole) for every request.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold every argument twice"
)]
pub(crate) fn serve<'a, C: Client + 'a>(
    snap: &'a Snapshot,
    parts: Parts,
    framing: Framing,
    peer: Peer<'a>,
    start: Instant,
    mut client: C,
    upstream_timer: Pin<&'a mut Kept>,
) -> impl Future<Output = Outcome> + Send + 'a {
    async move {
        let client = &mut client;
        let client_ip = rewrite::client_ip(&parts.fields, &peer);
        let log = finish::log_line(snap, &parts, client_ip);
        let prepared = match prepare::prepare(snap, parts, framing, &peer, client_ip) {
            Ok(p) => p,
            Err(e) => {
                let fin = Finish::new(start, &snap.unrouted, log);
                return fail(client, e, fin, &Trace::default()).await;
            }
        };
        let mut trace = Trace {
            timed: log.is_some(),
            ..Trace::default()
        };
        let fin = Finish::new(start, &prepared.upstream.stats, log);
        match forward::forward(snap, &prepared, client, &mut trace, upstream_timer).await {
            Ok(outcome) => {
                fin.done(&trace, true);
                outcome
            }
            Err(e) => {
                let fin = if trace.server.is_none() && e.side == crate::error::Side::Client {
                    Finish::new(start, &snap.unrouted, fin.into_log())
                } else {
                    fin
                };
                fail(client, e, fin, &trace).await
            }
        }
    }
}

async fn fail<C: Client>(client: &mut C, e: ProxyError, fin: Finish<'_>, trace: &Trace) -> Outcome {
    let answered = client.fail(&e).await;
    let mut trace = trace.clone();
    if answered || trace.status.is_none() {
        trace.status = Some(e.status());
    }
    tracing::debug!(error = %e, "request failed");
    fin.done(&trace, answered);
    if answered {
        Outcome::Refused
    } else {
        Outcome::Aborted
    }
}
