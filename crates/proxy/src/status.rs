//! The admin pages: `/status` (JSON per upstream server) and `/metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use stackd_common::admin::Admin;

use crate::snapshot::Snapshot;
use crate::stats::ProxyCollector;

/// The admin server for a running proxy.
pub fn admin(shared: Arc<ArcSwap<Snapshot>>) -> Admin {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProxyCollector {
        snapshot: shared.clone(),
    }));
    Admin::new(Arc::new(registry)).status(move || status(&shared.load()))
}

/// `/status`: every upstream server with its health and counters.
pub fn status(snap: &Snapshot) -> Value {
    let now = crate::clock::now_ms();
    let upstreams: Vec<Value> = snap
        .upstreams
        .iter()
        .map(|u| {
            let servers: Vec<Value> = u
                .all()
                .map(|s| {
                    let st = &s.state;
                    let last = st.last_check_unix_ms.load(Ordering::Relaxed);
                    json!({
                        "addr": st.addr.to_string(),
                        "weight": s.weight,
                        "backup": s.backup,
                        "node_id": s.node_id.as_deref(),
                        "up": st.usable(&u.passive, now),
                        "active_health_up": st.active_up.load(Ordering::Relaxed),
                        "passive_health_up": u.passive.max_fails == 0 || u.passive.available(st.passive(), now),
                        "passive_fails": st.passive().fails,
                        "active_connections": st.in_flight.load(Ordering::Relaxed),
                        "idle_connections": st.pool.idle(),
                        "requests": st.requests.load(Ordering::Relaxed),
                        "failures": st.failures.load(Ordering::Relaxed),
                        "last_check_unix_ms": (last > 0).then_some(last),
                        "last_check_ok": (last > 0).then(|| st.last_check_ok.load(Ordering::Relaxed)),
                    })
                })
                .collect();
            json!({
                "name": &*u.name,
                "balance": serde_json::to_value(u.policy()).unwrap_or(Value::Null),
                "requests": u.stats.requests(),
                "servers": servers,
            })
        })
        .collect();
    json!({ "upstreams": upstreams, "unrouted_requests": snap.unrouted.requests() })
}
