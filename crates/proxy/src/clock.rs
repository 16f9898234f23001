//! The proxy's clocks: the time of the current poll, milliseconds for
//! health bookkeeping, and the `Date` text.
//!
//! A request reads the time at every step of its connection's lifecycle,
//! for its deadlines and for its duration: about a dozen reads of the
//! system clock per request, 2 % of the proxy's CPU. Within one poll of a
//! connection's task those reads would all give the same answer to within
//! microseconds, so the task reads the clock once as its poll begins
//! ([`Clocked`]) and [`now`] answers from that reading (nginx does the
//! same once per turn of its event loop). Outside a clocked task [`now`]
//! reads the clock. Everything reads `tokio::time::Instant`, so paused-time
//! tests move these clocks too.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

thread_local! {
    /// When the poll of the clocked task running on this thread began.
    static POLL_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The time: when the current poll of this clocked task began, else the
/// clock's reading.
pub(crate) fn now() -> Instant {
    POLL_STARTED.get().unwrap_or_else(Instant::now)
}

pin_project_lite::pin_project! {
    /// A task whose polls read the clock once, for [`now`].
    pub(crate) struct Clocked<F> {
        #[pin]
        task: F,
    }
}

impl<F> Clocked<F> {
    pub(crate) fn new(task: F) -> Clocked<F> {
        Clocked { task }
    }
}

impl<F: Future> Future for Clocked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        /// Restores the outer reading, even if the task panics.
        struct Restore(Option<Instant>);
        impl Drop for Restore {
            fn drop(&mut self) {
                POLL_STARTED.set(self.0);
            }
        }
        let _restore = Restore(POLL_STARTED.replace(Some(Instant::now())));
        self.project().task.poll(cx)
    }
}

static BASE: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the process's clock base (monotonic).
pub(crate) fn now_ms() -> u64 {
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(now().saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock milliseconds since the Unix epoch, for status pages and logs.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The current time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`,
/// RFC 9110 §5.6.7) for `Date` headers. The wall clock is read and the
/// text formatted once per second per thread: the cached text serves
/// until [`now`] reaches the instant its second ends.
pub(crate) fn http_date() -> [u8; 29] {
    thread_local! {
        static CACHE: Cell<Option<(Instant, [u8; 29])>> = const { Cell::new(None) };
    }
    let now = now();
    if let Some((_, text)) = CACHE.get().filter(|(until, _)| now < *until) {
        return text;
    }
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let text = format_http_date(wall.as_secs());
    let rest =
        Duration::from_secs(1).saturating_sub(Duration::from_nanos(u64::from(wall.subsec_nanos())));
    CACHE.set(Some((now + rest, text)));
    text
}

fn format_http_date(unix_secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let (y, m, d) = civil(unix_secs / 86_400);
    let s = unix_secs % 86_400;
    let text = format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(unix_secs / 86_400 % 7) as usize],
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    let mut out = [b' '; 29];
    let n = text.len().min(29);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil(days: u64) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates() {
        assert_eq!(
            &super::format_http_date(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            &super::format_http_date(0),
            b"Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(super::http_date().len(), 29);
    }

    /// Within one poll of a clocked task the time stands; outside one it moves.
    #[tokio::test]
    async fn one_reading_per_poll() {
        let pause = || std::thread::sleep(std::time::Duration::from_millis(2));
        super::Clocked::new(async {
            let first = super::now();
            pause();
            assert_eq!(first, super::now(), "the same poll: the same reading");
        })
        .await;
        let outside = super::now();
        pause();
        assert!(super::now() > outside, "outside a clocked task: the clock");
    }

    /// The next poll of a clocked task reads the clock again.
    #[tokio::test(start_paused = true)]
    async fn each_poll_reads_again() {
        use std::time::Duration;
        use tokio::time::Instant;

        let task = super::Clocked::new(async {
            let first = super::now();
            tokio::time::advance(Duration::from_millis(5)).await;
            let second = super::now();
            assert!(second > first, "a later poll: a later reading");
            second
        });
        let inside = task.await;
        tokio::time::advance(Duration::from_millis(5)).await;
        assert_eq!(super::now(), Instant::now(), "outside: the clock");
        assert!(super::now() > inside);
    }
}
