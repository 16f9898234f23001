//! The access log line of a finished request.
//!
//! Log lines go through `tracing` with target `access`, so operators route
//! or silence them with the usual filters (`RUST_LOG=access=off`). The
//! `combined` format is nginx's, plus upstream address and timings; `json`
//! emits the same data as structured fields.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::{HeaderValue, Method, Uri, Version};
use stackd_common::config::proxy::AccessLog;

/// What the access log needs, captured only when logging is on.
#[derive(Debug)]
pub(crate) struct LogLine {
    pub(crate) format: AccessLog,
    pub(crate) client: IpAddr,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) referer: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) upstream_time: Option<Duration>,
}

fn hv(v: &Option<HeaderValue>) -> &str {
    v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
}

pub(crate) fn emit(l: &LogLine, status: u16, bytes: u64, total: Duration, complete: bool) {
    let upstream = l.upstream.map(|a| a.to_string());
    let upstream = upstream.as_deref().unwrap_or("-");
    let up_time = l.upstream_time.map_or(-1.0, |d| d.as_secs_f64());
    match l.format {
        AccessLog::Off => {}
        AccessLog::Combined => tracing::info!(
            target: "access",
            "{} - - [{}] \"{} {} {:?}\" {} {} \"{}\" \"{}\" upstream={} upstream_time={:.3} request_time={:.3}{}",
            l.client,
            clf_time(crate::clock::unix_ms() / 1000),
            l.method,
            l.uri,
            l.version,
            status,
            bytes,
            hv(&l.referer),
            hv(&l.user_agent),
            upstream,
            up_time,
            total.as_secs_f64(),
            if complete { "" } else { " aborted" },
        ),
        AccessLog::Json => tracing::info!(
            target: "access",
            client = %l.client,
            method = %l.method,
            path = %l.uri,
            status,
            bytes,
            upstream,
            upstream_time = up_time,
            total_time = total.as_secs_f64(),
            referer = hv(&l.referer),
            user_agent = hv(&l.user_agent),
            complete,
        ),
    }
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
