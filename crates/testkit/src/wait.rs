//! Waiting for something to become true, always with a deadline.
//!
//! Tests never sleep a fixed time hoping the world has moved on: they poll a
//! condition at a short interval and give up at a deadline with a message
//! that names what they waited for. The elapsed time is returned because
//! several tests report it (failover gaps, drain times).

use std::future::Future;
use std::thread::sleep;
use std::time::{Duration, SystemTime};

/// How often conditions are polled: short enough to measure failover gaps
/// in milliseconds, long enough not to spin a shared core.
pub const EVERY: Duration = Duration::from_millis(5);

/// Polls `cond` every [`EVERY`] until it holds or `within` has passed;
/// returns how long it took, or `None` at the deadline.
pub fn poll(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = SystemTime::now();
    let elapsed = || start.elapsed().unwrap_or_default();
    loop {
        if cond() {
            return Some(elapsed());
        }
        if elapsed() >= within {
            return None;
        }
        sleep(EVERY);
    }
}

/// [`poll`], panicking at the deadline with "`what` not reached within ...".
pub fn wait_until(what: &str, within: Duration, cond: impl FnMut() -> bool) -> Duration {
    poll(within, cond).unwrap_or_else(|| panic!("{what}: not reached within {within:?}"))
}

/// The async [`wait_until`]: awaits `cond()` every [`EVERY`] until it is true.
/// Uses tokio's clock, so it also works under paused time.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let probe = || {
        let fut = cond();
        async move {
            fut.await
                .then_some(())
                .ok_or_else(|| "still false".to_owned())
        }
    };
    until_ok(what, within, probe)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Awaits `probe()` every [`EVERY`] until it is `Ok`; at the deadline the
/// error names `what` and the probe's last reason ("redis-server: not
/// ready within 10s: connect 127.0.0.1:6379: refused"). For callers that
/// must not panic, such as `stackd lab`.
pub async fn until_ok<F, Fut>(
    what: &str,
    within: Duration,
    mut probe: F,
) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let start = tokio::time::Instant::now();
    loop {
        match probe().await {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) if start.elapsed() >= within => {
                return Err(format!("{what}: not ready within {within:?}: {e}"))
            }
            Err(_) => tokio::time::sleep(EVERY).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_reports_success_and_gives_up() {
        let mut n = 0;
        assert!(poll(Duration::from_secs(5), || {
            n += 1;
            n == 3
        })
        .is_some());
        assert_eq!(n, 3);
        assert!(poll(Duration::from_millis(20), || false).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn until_ok_reports_the_last_reason() {
        let e = until_ok("redis", Duration::from_millis(50), || async {
            Err("refused".to_owned())
        })
        .await
        .expect_err("never ok");
        assert_eq!(e, "redis: not ready within 50ms: refused");
    }

    #[test]
    #[should_panic(expected = "the moon: not reached within")]
    fn wait_until_names_what_it_waited_for() {
        wait_until("the moon", Duration::from_millis(10), || false);
    }

    #[tokio::test(start_paused = true)]
    async fn eventually_runs_on_tokio_time() {
        let start = tokio::time::Instant::now();
        let took = eventually("third call", Duration::from_secs(60), {
            let mut n = 0;
            move || {
                n += 1;
                std::future::ready(n == 3)
            }
        })
        .await;
        assert_eq!(took, EVERY * 2);
        assert_eq!(start.elapsed(), EVERY * 2);
    }
}
