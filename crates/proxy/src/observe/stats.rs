//! Counters and latency histograms as plain atomics, encoded for Prometheus
//! only when `/metrics` is scraped.
//!
//! prometheus-client's `Family` looks labels up under a lock and its
//! `Histogram` takes a lock per observation; on the request path we only do
//! `fetch_add`s on per-upstream structs that are resolved at config load.
//! A [`Collector`] walks the current snapshot at scrape time, so upstreams
//! added by a reload appear without re-registering anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::snapshot::Snapshot;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Requests and latency of one upstream (or of requests that reached none).
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Responses by status class: 1xx..5xx.
    pub by_class: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

// === impl UpstreamStats ===

impl UpstreamStats {
    /// Counts one finished request.
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.by_class
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// (sum in seconds, count, per-bucket counts as prometheus-client expects them).
    fn histogram(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut out: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&le, c)| (le, c.load(Ordering::Relaxed)))
            .collect();
        out.push((
            f64::MAX,
            self.buckets[BUCKETS.len()].load(Ordering::Relaxed),
        ));
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, self.count.load(Ordering::Relaxed), out)
    }
}

/// Encodes the live snapshot's numbers at scrape time.
#[derive(Debug)]
pub struct ProxyCollector {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl Collector for ProxyCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot.load();
        let groups: Vec<(&str, &UpstreamStats)> = snap
            .upstreams
            .iter()
            .map(|u| (&*u.name, &*u.stats))
            .chain(std::iter::once(("", &*snap.unrouted)))
            .collect();

        let mut m = enc.encode_descriptor(
            "stackd_proxy_requests",
            "Requests answered, by upstream (empty: none reached) and status class",
            None,
            MetricType::Counter,
        )?;
        for (name, st) in &groups {
            for (i, class) in CLASSES.iter().enumerate() {
                let labels = [("upstream", *name), ("class", *class)];
                let v = st.by_class[i].load(Ordering::Relaxed);
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "stackd_proxy_request_duration_seconds",
            "Time from request head to the end of the response, by upstream",
            None,
            MetricType::Histogram,
        )?;
        for (name, st) in &groups {
            let (sum, count, buckets) = st.histogram();
            let labels = [("upstream", *name)];
            m.encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        let mut m = enc.encode_descriptor(
            "stackd_proxy_upstream_server_up",
            "1 when the server may take traffic (active and passive health), else 0",
            None,
            MetricType::Gauge,
        )?;
        let now = crate::clock::now_ms();
        for u in &snap.upstreams {
            for s in u.all() {
                let labels = [("upstream", &*u.name), ("server", &*s.state.authority)];
                let up = i64::from(s.state.usable(&u.passive, now));
                m.encode_family(&labels)?.encode_gauge(&up)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "stackd_proxy_upstream_server_in_flight",
            "Requests in flight per upstream server",
            None,
            MetricType::Gauge,
        )?;
        for u in &snap.upstreams {
            for s in u.all() {
                let labels = [("upstream", &*u.name), ("server", &*s.state.authority)];
                let v = s.state.in_flight.load(Ordering::Relaxed) as i64;
                m.encode_family(&labels)?.encode_gauge(&v)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "stackd_proxy_upstream_server_failures",
            "Failed attempts (connect, reset, timeout) per upstream server",
            None,
            MetricType::Counter,
        )?;
        for u in &snap.upstreams {
            for s in u.all() {
                let labels = [("upstream", &*u.name), ("server", &*s.state.authority)];
                let v = s.state.failures.load(Ordering::Relaxed);
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_counts_class_and_bucket() {
        let s = UpstreamStats::default();
        s.observe(200, Duration::from_micros(500));
        s.observe(503, Duration::from_millis(30));
        s.observe(404, Duration::from_secs(60));
        assert_eq!(s.by_class[1].load(Ordering::Relaxed), 1);
        assert_eq!(s.by_class[3].load(Ordering::Relaxed), 1);
        assert_eq!(s.by_class[4].load(Ordering::Relaxed), 1);
        let (sum, count, b) = s.histogram();
        assert_eq!(count, 3);
        assert!((sum - 60.0305).abs() < 1e-6, "{sum}");
        assert_eq!(b[0].1, 1);
        assert_eq!(b[5].1, 1);
        assert_eq!(b.last().unwrap().1, 1);
    }
}
