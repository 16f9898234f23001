//! The end of every request: its status and latency counted, and its
//! access log line written, exactly once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::StatusCode;
use stackd_common::config::proxy::AccessLog;
use tokio::time::Instant;

use crate::codec::request::Parts;
use crate::codec::{names, Lookup, Name};
use crate::observe::access::{emit, LogLine, Outcome};
use crate::observe::stats::UpstreamStats;
use crate::snapshot::Snapshot;

/// What the exchange learnt, for the log.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace {
    /// The status sent (or about to be): the upstream's, or ours.
    pub(crate) status: Option<StatusCode>,
    /// The server that answered (or was tried last).
    pub(crate) server: Option<SocketAddr>,
    /// From sending the request to the response head (only when `timed`).
    pub(crate) upstream_time: Option<Duration>,
    /// Whether the log wants `upstream_time` (two clock reads otherwise spared).
    pub(crate) timed: bool,
    /// Response body bytes sent to the client.
    pub(crate) bytes: u64,
}

/// Counters and log line of one request, run by [`Finish::done`].
#[derive(Debug)]
pub(crate) struct Finish<'s> {
    start: Instant,
    /// Borrowed from the request's snapshot: no reference count touched.
    stats: &'s UpstreamStats,
    /// Boxed: most configs log nothing, and an inline line would make
    /// every request's future 270 bytes larger.
    log: Option<Box<LogLine>>,
}

/// The log line's request part, captured only when logging is on.
pub(crate) fn log_line(snap: &Snapshot, parts: &Parts, client: IpAddr) -> Option<Box<LogLine>> {
    let wanted =
        snap.access_file.is_some() || tracing::enabled!(target: "access", tracing::Level::INFO);
    (snap.access_log != AccessLog::Off && wanted).then(|| {
        Box::new(LogLine {
            format: snap.access_log,
            file: snap.access_file.clone(),
            client,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            referer: first(parts, &names::REFERER),
            user_agent: first(parts, &names::USER_AGENT),
            upstream: None,
            upstream_time: None,
        })
    })
}

/// The first `name` field, for the log.
fn first(parts: &Parts, name: &Name) -> Option<http::HeaderValue> {
    let v = parts.fields.values(name).next()?;
    http::HeaderValue::from_bytes(v).ok()
}

// === impl Finish ===

impl<'s> Finish<'s> {
    pub(crate) fn new(
        start: Instant,
        stats: &'s UpstreamStats,
        log: Option<Box<LogLine>>,
    ) -> Finish<'s> {
        Finish { start, stats, log }
    }

    pub(crate) fn into_log(self) -> Option<Box<LogLine>> {
        self.log
    }

    /// Counts the request and logs it; `complete`: the response went out whole.
    pub(crate) fn done(self, trace: &Trace, complete: bool) {
        let elapsed = crate::clock::now().saturating_duration_since(self.start);
        let status = trace.status.map_or(0, |s| s.as_u16());
        self.stats.observe(status, elapsed);
        if let Some(mut l) = self.log {
            l.upstream = trace.server;
            l.upstream_time = trace.upstream_time;
            let outcome = Outcome {
                status,
                bytes: trace.bytes,
                total: elapsed,
                complete,
            };
            emit(&l, outcome);
        }
    }
}
