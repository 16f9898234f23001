//! The access log line of a finished request.
//!
//! By default lines go through `tracing` with target `access`, so operators
//! route or silence them with the usual filters (`RUST_LOG=access=off`);
//! with `access_log = { path }` they go to a file of their own, reopened on
//! SIGUSR1. The `combined` format is nginx's, plus upstream address and
//! timings; `json` carries the same data as one object per line.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Uri, Version};
use stackd_common::config::proxy::AccessLog;
use stackd_common::logfile::LogFile;

/// What the access log needs, captured only when logging is on.
#[derive(Debug)]
pub(crate) struct LogLine {
    pub(crate) format: AccessLog,
    /// The file lines go to; `None`: the process log.
    pub(crate) file: Option<Arc<LogFile>>,
    pub(crate) client: IpAddr,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) referer: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) upstream_time: Option<Duration>,
}

/// How the request ended, for its line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome {
    pub(crate) status: u16,
    pub(crate) bytes: u64,
    pub(crate) total: Duration,
    /// The response went out whole.
    pub(crate) complete: bool,
}

fn hv(v: &Option<HeaderValue>) -> &str {
    v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
}

pub(crate) fn emit(l: &LogLine, o: Outcome) {
    match (l.format, &l.file) {
        (AccessLog::Off, _) => {}
        (AccessLog::Combined, Some(f)) => f.write_line(&combined(l, o)),
        (AccessLog::Json, Some(f)) => f.write_line(&json(l, o).to_string()),
        (AccessLog::Combined, None) => tracing::info!(target: "access", "{}", combined(l, o)),
        (AccessLog::Json, None) => tracing::info!(
            target: "access",
            client = %l.client,
            method = %l.method,
            path = %l.uri,
            status = o.status,
            bytes = o.bytes,
            upstream = upstream(l).as_deref().unwrap_or("-"),
            upstream_time = upstream_time(l),
            total_time = o.total.as_secs_f64(),
            referer = hv(&l.referer),
            user_agent = hv(&l.user_agent),
            complete = o.complete,
        ),
    }
}

fn upstream(l: &LogLine) -> Option<String> {
    l.upstream.map(|a| a.to_string())
}

/// Seconds, or -1 when no upstream answered.
fn upstream_time(l: &LogLine) -> f64 {
    l.upstream_time.map_or(-1.0, |d| d.as_secs_f64())
}

/// nginx's `combined`, plus `upstream=`, `upstream_time=`, `request_time=`.
fn combined(l: &LogLine, o: Outcome) -> String {
    format!(
        "{} - - [{}] \"{} {} {:?}\" {} {} \"{}\" \"{}\" upstream={} upstream_time={:.3} request_time={:.3}{}",
        l.client,
        clf_time(crate::clock::unix_ms() / 1000),
        l.method,
        l.uri,
        l.version,
        o.status,
        o.bytes,
        hv(&l.referer),
        hv(&l.user_agent),
        upstream(l).as_deref().unwrap_or("-"),
        upstream_time(l),
        o.total.as_secs_f64(),
        if o.complete { "" } else { " aborted" },
    )
}

/// The `json` line of a file: the fields the process log carries, and the time.
fn json(l: &LogLine, o: Outcome) -> serde_json::Value {
    serde_json::json!({
        "time": clf_time(crate::clock::unix_ms() / 1000),
        "client": l.client.to_string(),
        "method": l.method.as_str(),
        "path": l.uri.to_string(),
        "status": o.status,
        "bytes": o.bytes,
        "upstream": upstream(l),
        "upstream_time": upstream_time(l),
        "total_time": o.total.as_secs_f64(),
        "referer": hv(&l.referer),
        "user_agent": hv(&l.user_agent),
        "complete": o.complete,
    })
}

/// `25/Nov/2026:17:14:22 +0000`, the Common Log Format time, in UTC.
pub(crate) fn clf_time(unix_secs: u64) -> String {
    use crate::clock::{civil, MONTHS};
    let (y, m, d) = civil(unix_secs / 86_400);
    let secs = unix_secs % 86_400;
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_time_formats_utc() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(1_795_626_862), "25/Nov/2026:17:14:22 +0000");
        assert_eq!(clf_time(951_782_400), "29/Feb/2000:00:00:00 +0000");
    }
}
