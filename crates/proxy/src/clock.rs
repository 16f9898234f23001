//! A monotonic millisecond clock for health bookkeeping.
//!
//! Passive health stores "when did it last fail" in an `AtomicU64`, so time
//! is a plain number of milliseconds since the first call in this process.
//! It reads `tokio::time::Instant`, so paused-time tests move it too.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

static BASE: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the process's clock base (monotonic).
pub fn now_ms() -> u64 {
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(Instant::now().saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock milliseconds since the Unix epoch, for status pages and logs.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
