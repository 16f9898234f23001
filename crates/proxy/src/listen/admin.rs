//! The admin listener's pages: `/healthz` (503 "draining", then
//! "stopping", so a local `stackd ha` tracking it demotes), `/status`
//! (JSON per upstream server), `/metrics` (Prometheus text, encoded from
//! atomics at scrape time) and the maintenance calls of `stackd ctl`
//! (`POST /ctl/{drain,disable,enable}`, taken from loopback only).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::StatusCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use stackd_common::admin::{Admin, Page};

use super::lifecycle::Timer;
use super::{Observed, Phase};
use crate::observe::stats::UpstreamStats;
use crate::snapshot::Snapshot;
use crate::upstream::server::AdminState;
use crate::upstream::UpstreamRt;

/// The admin server for a running proxy.
pub(crate) fn admin(shared: Arc<ArcSwap<Snapshot>>, observed: Arc<Observed>) -> Admin {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProxyCollector {
        snapshot: shared.clone(),
        observed: observed.clone(),
    }));
    let mut admin = Admin::new(Arc::new(registry));
    for state in [AdminState::Drain, AdminState::Disable, AdminState::Enable] {
        let shared = shared.clone();
        admin = admin.action(&format!("/ctl/{}", state.label()), move |query| {
            set_admin(&shared.load(), query, state)
        });
    }
    admin
        .status(move || status(&shared.load()))
        .route("/healthz", move || match observed.phase() {
            Phase::Serving => Page::text(StatusCode::OK, "ok\n"),
            // `stackd ha` reads "draining" as a planned stop: it hands the
            // VIP over at once, keeping it until the peer has it.
            Phase::Draining => Page::text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
            Phase::Stopping => Page::text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n"),
        })
}

/// `stackd ctl`: `upstream=<name>&server=<ip:port>` set to `state`. The
/// state lives with the server, so it survives reloads (not restarts).
fn set_admin(snap: &Snapshot, query: &str, state: AdminState) -> Page {
    let (mut upstream, mut server) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "upstream" => upstream = Some(v.into_owned()),
            "server" => server = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(upstream), Some(server)) = (upstream, server) else {
        return Page::text(
            StatusCode::BAD_REQUEST,
            "400 Bad Request: give upstream=<name>&server=<ip:port>\n",
        );
    };
    let Some(u) = snap.upstreams.iter().find(|u| *u.name == *upstream) else {
        return Page::text(
            StatusCode::NOT_FOUND,
            format!("404 Not Found: no upstream {upstream:?}\n"),
        );
    };
    let Some(s) = u.all().find(|s| s.state.authority() == server) else {
        let known: Vec<&str> = u.all().map(|s| s.state.authority()).collect();
        return Page::text(
            StatusCode::NOT_FOUND,
            format!(
                "404 Not Found: upstream {upstream} has no server {server} (it has {known:?})\n"
            ),
        );
    };
    let was = s.state.set_admin(state);
    tracing::warn!(
        upstream,
        server,
        state = state.label(),
        was = was.label(),
        "server admin state set (stackd ctl)"
    );
    Page::text(
        StatusCode::OK,
        format!(
            "upstream {upstream} server {server}: {} (was {}); in flight {}\n",
            state.label(),
            was.label(),
            s.state.in_flight()
        ),
    )
}

/// `/status`: every upstream server with its health and counters.
pub(crate) fn status(snap: &Snapshot) -> Value {
    let now = crate::clock::now_ms();
    let upstreams: Vec<Value> = snap.upstreams.iter().map(|u| upstream(u, now)).collect();
    json!({ "upstreams": upstreams, "unrouted_requests": snap.unrouted.requests() })
}

fn upstream(u: &UpstreamRt, now: u64) -> Value {
    let servers: Vec<Value> = u
        .all()
        .map(|s| {
            let st = &s.state;
            let c = st.counters();
            json!({
                "addr": st.addr().to_string(),
                "weight": s.weight,
                "backup": s.backup,
                "node_id": s.node_id.as_deref(),
                "up": st.healthy(&u.passive, || now),
                "admin_state": st.admin().label(),
                "active_health_up": st.active().up,
                "passive_health_up": u.passive.max_fails == 0 || u.passive.available(st.passive(), now),
                "passive_fails": st.passive().fails,
                "active_connections": c.in_flight,
                "idle_connections": c.idle,
                "requests": c.requests,
                "failures": c.failures,
                "last_check_unix_ms": c.last_check.map(|(at, _)| at),
                "last_check_ok": c.last_check.map(|(_, ok)| ok),
                "last_failure": st.last_failure().map(|f| json!({
                    "unix_ms": f.unix_ms,
                    "by": f.by,
                    "error": &*f.error,
                })),
            })
        })
        .collect();
    json!({
        "name": &*u.name,
        "balance": serde_json::to_value(u.policy()).unwrap_or(Value::Null),
        "requests": u.stats.requests(),
        "servers": servers,
    })
}

/// Encodes the live snapshot's numbers at scrape time.
#[derive(Debug)]
struct ProxyCollector {
    snapshot: Arc<ArcSwap<Snapshot>>,
    observed: Arc<Observed>,
}

impl Collector for ProxyCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot.load();
        let groups: Vec<(&str, &UpstreamStats)> = snap
            .upstreams
            .iter()
            .map(|u| (&*u.name, &*u.stats))
            .chain(std::iter::once(("", &*snap.unrouted)))
            .collect();
        requests(&mut enc, &groups)?;
        servers(&mut enc, &snap)?;
        self.lifecycle(&mut enc)
    }
}

fn counter<V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, &str)>, V)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, &str)>, f64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

/// Requests by upstream and status code, latency, broken upstream responses.
fn requests(
    enc: &mut DescriptorEncoder<'_>,
    groups: &[(&str, &UpstreamStats)],
) -> std::fmt::Result {
    let codes: Vec<(&str, String, u64)> = groups
        .iter()
        .flat_map(|(name, st)| st.codes().map(move |(c, n)| (*name, c.to_string(), n)))
        .collect();
    let rows: Vec<_> = codes
        .iter()
        .map(|(u, c, n)| (vec![("upstream", *u), ("code", c.as_str())], *n))
        .collect();
    counter(enc, "stackd_proxy_requests", "Requests answered, by upstream (empty: none reached) and status code (499: the client went away)", &rows)?;
    let mut m = enc.encode_descriptor(
        "stackd_proxy_request_duration_seconds",
        "Time from request head to the end of the response, by upstream",
        None,
        MetricType::Histogram,
    )?;
    for (name, st) in groups {
        let (sum, count, buckets) = st.histogram();
        m.encode_family(&[("upstream", *name)])?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    let rows: Vec<_> = groups
        .iter()
        .filter(|(name, _)| !name.is_empty())
        .flat_map(|(name, st)| {
            st.bad_responses()
                .map(move |(b, n)| (vec![("upstream", *name), ("reason", b.label())], n))
        })
        .collect();
    counter(
        enc,
        "stackd_proxy_upstream_bad_responses",
        "Upstream responses refused as broken (answered 502, connection closed), by reason",
        &rows,
    )
}

fn labels<'a>(upstream: &'a str, s: &'a crate::upstream::ServerRt) -> Vec<(&'a str, &'a str)> {
    vec![("upstream", upstream), ("server", s.state.authority())]
}

/// Per-server health, in-flight requests and failures.
fn servers(enc: &mut DescriptorEncoder<'_>, snap: &Snapshot) -> std::fmt::Result {
    let now = crate::clock::now_ms();
    let all: Vec<(&str, &crate::upstream::ServerRt, &UpstreamRt)> = snap
        .upstreams
        .iter()
        .flat_map(|u| u.all().map(move |s| (&*u.name, s, &**u)))
        .collect();
    let up: Vec<_> = all
        .iter()
        .map(|(n, s, u)| {
            (
                labels(n, s),
                if s.state.healthy(&u.passive, || now) {
                    1.0
                } else {
                    0.0
                },
            )
        })
        .collect();
    gauge(
        enc,
        "stackd_proxy_upstream_server_up",
        "1 when active and passive health allow traffic, else 0 (whatever stackd ctl set)",
        &up,
    )?;
    let enabled: Vec<_> = all
        .iter()
        .map(|(n, s, _)| {
            let on = s.state.admin() == AdminState::Enable;
            (labels(n, s), if on { 1.0 } else { 0.0 })
        })
        .collect();
    gauge(
        enc,
        "stackd_proxy_upstream_server_enabled",
        "0 while stackd ctl has the server drained or disabled, else 1",
        &enabled,
    )?;
    let busy: Vec<_> = all
        .iter()
        .map(|(n, s, _)| (labels(n, s), s.state.in_flight() as f64))
        .collect();
    gauge(
        enc,
        "stackd_proxy_upstream_server_in_flight",
        "Requests in flight per upstream server",
        &busy,
    )?;
    let failures: Vec<_> = all
        .iter()
        .map(|(n, s, _)| (labels(n, s), s.state.counters().failures))
        .collect();
    counter(
        enc,
        "stackd_proxy_upstream_server_failures",
        "Failed attempts (connect, reset, timeout, broken response) per upstream server",
        &failures,
    )
}

impl ProxyCollector {
    /// Reloads, open connections, and connections closed by each lifecycle timer.
    fn lifecycle(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let (ok, failed, last_ms) = self.observed.reloads.get();
        counter(
            enc,
            "stackd_proxy_reloads",
            "Config reloads, by result (failed: the old config kept serving)",
            &[
                (vec![("result", "ok")], ok),
                (vec![("result", "failed")], failed),
            ],
        )?;
        gauge(
            enc,
            "stackd_proxy_last_reload_timestamp_seconds",
            "Unix time of the last config that took effect (the start counts)",
            &[(vec![], last_ms as f64 / 1000.0)],
        )?;
        gauge(
            enc,
            "stackd_proxy_client_connections",
            "Client connections open (tunnels included), against max_connections",
            &[(vec![], self.observed.connections() as f64)],
        )?;
        gauge(
            enc,
            "stackd_proxy_client_connections_parked",
            "Of those, idle ones held without a task of their own (idle for 250 ms or more)",
            &[(vec![], self.observed.parked.load(Ordering::Relaxed) as f64)],
        )?;
        let workers: Vec<(String, f64)> = self
            .observed
            .cpu_ns
            .all()
            .map(|ns| ns.load(Ordering::Relaxed))
            .enumerate()
            .filter(|(_, ns)| *ns > 0)
            .map(|(i, ns)| (i.to_string(), ns as f64 / 1e9))
            .collect();
        let rows: Vec<_> = workers
            .iter()
            .map(|(i, secs)| (vec![("worker", i.as_str())], *secs))
            .collect();
        counter(
            enc,
            "stackd_proxy_worker_cpu_seconds",
            "CPU time of each worker thread, as of the end of its event loop's last turn (none without workers)",
            &rows,
        )?;
        let rows: Vec<_> = Timer::ALL
            .iter()
            .map(|t| {
                (
                    vec![("timer", t.label())],
                    self.observed.timeouts.get(t.index()),
                )
            })
            .collect();
        counter(
            enc,
            "stackd_proxy_client_timeouts",
            "Client connections whose lifecycle deadline passed, by the timeout that fired",
            &rows,
        )
    }
}
