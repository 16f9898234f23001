//! Prometheus metrics of the demo backend, served at `GET /metrics` on the
//! same listener (the demo has no separate admin port): requests by route and
//! status, and how long session work took, so the effect of a slow or absent
//! Redis is visible from outside.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub route: &'static str,
    pub status: u16,
}

pub(crate) struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub session_seconds: Histogram,
}

// === impl Metrics ===

impl Metrics {
    pub fn new(node: &str) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "stackd_demo",
            [("node".into(), node.to_owned().into())].into_iter(),
        );
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        // 0.25ms .. ~4s: a session request is two Redis round trips, or a timeout.
        let session_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.000_25, 2.0, 15),
        );
        registry.register(
            "session_seconds",
            "Time spent loading and saving the session of a request",
            session_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            session_seconds,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}
