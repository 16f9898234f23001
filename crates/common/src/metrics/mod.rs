//! Metrics every stackd process exposes on its admin `/metrics`, whatever its
//! role: which build is running (`stackd_build_info`) and the standard
//! `process_*` series (CPU, memory, file descriptors, threads, start time).
//!
//! They are read at scrape time, so they cost nothing between scrapes.
//! [`crate::admin::Admin`] encodes them ahead of the service's own registry.

pub mod procfs;

use std::sync::OnceLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Which build is running: set once by the binary (its build script knows the
/// commit); libraries and their tests see "unknown".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub date: &'static str,
}

static BUILD: OnceLock<BuildInfo> = OnceLock::new();

/// Records the running build; the first call wins.
pub fn set_build_info(info: BuildInfo) {
    let _ = BUILD.set(info);
}

/// The running build, as recorded by [`set_build_info`].
pub fn build_info() -> BuildInfo {
    BUILD.get().cloned().unwrap_or(BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: "unknown",
        date: "unknown",
    })
}

/// A registry holding the build and process collectors.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Common));
    r
}

#[derive(Debug)]
struct Common;

impl Collector for Common {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let b = build_info();
        let labels = [("version", b.version), ("commit", b.commit)];
        let info = ConstGauge::new(1i64);
        let mut m = enc.encode_descriptor(
            "stackd_build_info",
            "The running build: 1, labelled with its version and git commit",
            None,
            info.metric_type(),
        )?;
        info.encode(m.encode_family(&labels)?)?;
        for s in process_samples() {
            s.encode(&mut enc)?;
        }
        Ok(())
    }
}

/// One `process_*` sample.
enum Sample {
    Gauge(&'static str, &'static str, f64),
    Counter(&'static str, &'static str, f64),
}

impl Sample {
    fn encode(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        match *self {
            Sample::Gauge(name, help, v) => {
                let g = ConstGauge::new(v);
                g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
            }
            Sample::Counter(name, help, v) => {
                let c = ConstCounter::new(v);
                c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
            }
        }
    }
}

/// Reads `/proc/self`; whatever cannot be read is left out rather than faked.
fn process_samples() -> Vec<Sample> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let mut out = Vec::new();
    let tick = sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64;
    let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096) as f64;
    if let Some(s) = read("/proc/self/stat")
        .as_deref()
        .and_then(procfs::parse_stat)
    {
        out.push(Sample::Counter(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            (s.utime_ticks + s.stime_ticks) as f64 / tick,
        ));
        out.push(Sample::Gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            s.rss_pages as f64 * page,
        ));
        out.push(Sample::Gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            s.vsize_bytes as f64,
        ));
        out.push(Sample::Gauge(
            "process_threads",
            "OS threads in the process",
            s.threads as f64,
        ));
        if let Some(boot) = read("/proc/stat").as_deref().and_then(procfs::parse_btime) {
            out.push(Sample::Gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                boot as f64 + s.start_ticks as f64 / tick,
            ));
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        out.push(Sample::Gauge(
            "process_open_fds",
            "Open file descriptors",
            dir.count() as f64,
        ));
    }
    if let Some(n) = read("/proc/self/limits")
        .as_deref()
        .and_then(procfs::parse_max_fds)
    {
        out.push(Sample::Gauge(
            "process_max_fds",
            "Maximum number of open file descriptors (soft limit)",
            n as f64,
        ));
    }
    out
}

fn sysconf(name: libc::c_int) -> Option<i64> {
    // SAFETY: sysconf only reads a process-wide constant; any name is allowed
    // and an unknown one returns -1.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_process_series_are_encoded() {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry()).unwrap();
        assert!(
            out.contains(&format!(
                "stackd_build_info{{version=\"{}\",commit=\"unknown\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{out}"
        );
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_threads ",
            "process_start_time_seconds ",
        ] {
            assert!(out.contains(name), "{name} missing in\n{out}");
        }
    }
}
