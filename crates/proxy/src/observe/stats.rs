//! Counters and latency histograms as plain atomics, encoded for Prometheus
//! only when `/metrics` is scraped (`listen::admin`).
//!
//! prometheus-client's `Family` looks labels up under a lock and its
//! `Histogram` takes a lock per observation; on the request path we only
//! add to counters resolved at config load, each worker to its own copy
//! ([`PerWorker`]), summed when scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::codec::BadResponse;
use crate::worker::PerWorker;

/// Upper bounds of the latency buckets, in seconds.
pub(crate) const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Status codes counted one by one: 100..=599.
const CODES: usize = 500;

/// Requests and latency of one upstream (or of requests that reached none),
/// one [`Shard`] per worker: a request adds to its own worker's counters
/// only, the admin pages sum them.
#[derive(Debug, Default)]
pub(crate) struct UpstreamStats {
    shards: PerWorker<Shard>,
}

/// One worker's counters.
#[derive(Debug)]
struct Shard {
    /// Responses by status code (index: code - 100); 499 is "client closed".
    by_code: Box<[AtomicU64]>,
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
    /// Broken upstream responses by [`BadResponse`].
    bad: [AtomicU64; BadResponse::ALL.len()],
}

impl Default for Shard {
    fn default() -> Shard {
        Shard {
            by_code: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
            bad: Default::default(),
        }
    }
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

// === impl UpstreamStats ===

impl UpstreamStats {
    /// Counts one finished request.
    pub(crate) fn observe(&self, status: u16, elapsed: Duration) {
        // 0..CODES: `by_code` has a counter for every clamped code.
        let i = usize::from(status.clamp(100, 599)) - 100;
        self.shards.add(|s| &s.by_code[i], 1);
        let secs = elapsed.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        self.shards.add(|s| &s.buckets[b], 1);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.shards.add(|s| &s.sum_us, us);
        self.shards.add(|s| &s.count, 1);
    }

    /// Counts one broken upstream response.
    pub(crate) fn bad_response(&self, why: BadResponse) {
        self.shards.add(|s| &s.bad[why.index()], 1);
    }

    /// `pick`'s counter summed over the workers.
    fn sum(&self, pick: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards.all().map(|s| get(pick(s))).sum()
    }

    pub(crate) fn bad_responses(&self) -> impl Iterator<Item = (BadResponse, u64)> + '_ {
        BadResponse::ALL
            .iter()
            .map(|b| (*b, self.sum(|s| &s.bad[b.index()])))
    }

    /// (code, count) for every code seen at least once.
    pub(crate) fn codes(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (0..CODES).filter_map(|i| {
            let n = self.sum(|s| &s.by_code[i]);
            (n > 0).then_some((i as u16 + 100, n))
        })
    }

    pub(crate) fn requests(&self) -> u64 {
        self.sum(|s| &s.count)
    }

    /// (sum in seconds, count, per-bucket counts as prometheus-client expects them).
    pub(crate) fn histogram(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut out: Vec<(f64, u64)> = BUCKETS
            .iter()
            .enumerate()
            .map(|(i, &le)| (le, self.sum(|s| &s.buckets[i])))
            .collect();
        out.push((f64::MAX, self.sum(|s| &s.buckets[BUCKETS.len()])));
        let sum = self.sum(|s| &s.sum_us) as f64 / 1e6;
        (sum, self.requests(), out)
    }
}

/// Config reloads: how many took, how many were refused, and when the last took.
#[derive(Debug, Default)]
pub(crate) struct Reloads {
    ok: AtomicU64,
    failed: AtomicU64,
    last_ok_unix_ms: AtomicU64,
}

impl Reloads {
    pub(crate) fn record(&self, ok: bool, unix_ms: u64) {
        if ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
            self.last_ok_unix_ms.store(unix_ms, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (ok, failed, unix ms of the last good reload or of the start).
    pub(crate) fn get(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.last_ok_unix_ms.load(Ordering::Relaxed),
        )
    }
}

/// Client connections closed by a lifecycle deadline, by timer (index
/// given by the lifecycle's timer list).
#[derive(Debug, Default)]
pub(crate) struct Timeouts {
    by_timer: [AtomicU64; 8],
}

impl Timeouts {
    pub(crate) fn count(&self, index: usize) {
        if let Some(c) = self.by_timer.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self, index: usize) -> u64 {
        self.by_timer
            .get(index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_counts_code_and_bucket() {
        let s = UpstreamStats::default();
        s.observe(200, Duration::from_micros(500));
        s.observe(503, Duration::from_millis(30));
        s.observe(404, Duration::from_secs(60));
        let codes: Vec<_> = s.codes().collect();
        assert_eq!(codes, vec![(200, 1), (404, 1), (503, 1)]);
        let (sum, count, b) = s.histogram();
        assert_eq!(count, 3);
        assert!((sum - 60.0305).abs() < 1e-6, "{sum}");
        assert_eq!(b[0].1, 1);
        assert_eq!(b[5].1, 1);
        assert_eq!(b.last().unwrap().1, 1);
    }
}
