//! The end of every request: metrics, in-flight bookkeeping and the access
//! log line, run exactly once when the response body is dropped.
//!
//! Log lines go through `tracing` with target `access`, so operators route
//! or silence them with the usual filters (`RUST_LOG=access=off`). The
//! `combined` format is nginx's, plus upstream address and timings; `json`
//! emits the same data as structured fields.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Uri, Version};
use stackd_common::config::proxy::AccessLog;
use tokio::time::Instant;

use crate::conn::ConnInfo;
use crate::stats::UpstreamStats;
use crate::upstream::ServerState;

/// Decrements a server's in-flight count when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<ServerState>);

impl InFlight {
    pub fn new(s: Arc<ServerState>) -> InFlight {
        s.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(s)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the access log needs, captured only when logging is on.
#[derive(Debug)]
pub struct LogLine {
    pub format: AccessLog,
    pub client: IpAddr,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub upstream: Option<SocketAddr>,
    pub upstream_time: Option<Duration>,
}

/// Bookkeeping carried by the response body to its end.
#[derive(Debug)]
pub struct Finish {
    pub start: Instant,
    pub status: u16,
    pub bytes: u64,
    pub stats: Arc<UpstreamStats>,
    pub in_flight: Option<InFlight>,
    pub conn: Arc<ConnInfo>,
    pub log: Option<LogLine>,
}

// === impl Finish ===

impl Finish {
    /// Runs once, when the response body ends (`complete`) or is dropped early.
    pub fn done(self, complete: bool) {
        let elapsed = self.start.elapsed();
        self.stats.observe(self.status, elapsed);
        self.conn.response_done(complete);
        drop(self.in_flight);
        if let Some(l) = &self.log {
            emit(l, self.status, self.bytes, elapsed, complete);
        }
    }
}

fn hv(v: &Option<HeaderValue>) -> &str {
    v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
}

fn emit(l: &LogLine, status: u16, bytes: u64, total: Duration, complete: bool) {
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
pub fn clf_time(unix_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
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
