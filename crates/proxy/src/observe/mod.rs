//! What the proxy tells its operators: counters, histograms and the access
//! log. Leaf module: it reads nothing else of the proxy, so everything may
//! record into it; `listen::admin` renders it on `/status` and `/metrics`.
//!
//! # Layout
//! - [`stats`]: per-upstream requests by status code, latency, broken
//!   responses; reloads; client timeouts.
//! - [`access`]: the access log line (nginx `combined`, or JSON).

pub(crate) mod access;
pub(crate) mod stats;
