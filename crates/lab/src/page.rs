//! The lab's live page: the shared one of `stackd_common::live` in lab mode
//! (with the lab's controls), fed from `/lab.json`, a JSON snapshot a poller
//! task refreshes every second with the rates and VIP timeline of
//! [`crate::history`].

use std::sync::{Arc, RwLock};

use serde_json::Value;
use stackd_common::admin::{Admin, Page};
use stackd_common::live;

/// The latest snapshot, shared between the poller and the page handlers.
#[derive(Clone, Default)]
pub struct Snapshot(Arc<RwLock<Value>>);

impl Snapshot {
    pub fn set(&self, v: Value) {
        if let Ok(mut g) = self.0.write() {
            *g = v;
        }
    }

    pub fn get(&self) -> Value {
        self.0.read().map(|g| g.clone()).unwrap_or(Value::Null)
    }
}

/// Admin routes serving the page and its data.
pub fn admin(snapshot: Snapshot) -> Admin {
    let registry = Arc::new(prometheus_client::registry::Registry::default());
    let s = snapshot.clone();
    let html = live::page(live::Mode::Lab);
    Admin::new(registry)
        .route("/", move || Page::html(html.clone()))
        .route("/lab.json", move || Page::json(&s.get()))
        .status(move || snapshot.get())
}

/// Requests per second between two one-second samples of [`requests_total`];
/// 0 when either is missing or the counter went back (a proxy restart).
pub fn per_second(now: Option<f64>, before: Option<f64>) -> f64 {
    match (now, before) {
        (Some(n), Some(b)) if n >= b => n - b,
        _ => 0.0,
    }
}

/// Servers of several proxies merged by address, requests and failures
/// added: what each backend got from all of them.
pub fn sum_servers(servers: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for s in servers {
        let add = |o: &mut Value, k: &str| {
            let v = o[k].as_f64().unwrap_or(0.0) + s[k].as_f64().unwrap_or(0.0);
            o[k] = serde_json::json!(v);
        };
        match out.iter_mut().find(|o| o["addr"] == s["addr"]) {
            Some(o) => {
                add(o, "requests");
                add(o, "failures");
            }
            None => out.push(s.clone()),
        }
    }
    out
}

/// Requests the proxy has handled so far, from its `/status`: the sum over
/// upstreams plus requests no route matched.
pub fn requests_total(status: &Value) -> f64 {
    let upstreams: f64 = status
        .get("upstreams")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|u| u.get("requests").and_then(Value::as_f64))
        .sum();
    upstreams
        + status
            .get("unrouted_requests")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_requests_from_status() {
        let st = serde_json::json!({"upstreams": [{"requests": 3}, {"requests": 2}], "unrouted_requests": 1});
        assert_eq!(requests_total(&st), 6.0);
        assert_eq!(requests_total(&Value::Null), 0.0);
    }

    #[test]
    fn servers_of_both_proxies_add_up() {
        let both = sum_servers(&[
            serde_json::json!({"addr": "a", "requests": 3, "failures": 1}),
            serde_json::json!({"addr": "b", "requests": 2, "failures": 0}),
            serde_json::json!({"addr": "a", "requests": 4, "failures": 0}),
        ]);
        assert_eq!(both.len(), 2);
        assert_eq!(both[0]["requests"], 7.0);
        assert_eq!(both[0]["failures"], 1.0);
    }

    #[test]
    fn page_and_data_are_served() {
        let snap = Snapshot::default();
        snap.set(serde_json::json!({"mode": "loopback"}));
        let a = admin(snap);
        let page = a.handle(&http::Method::GET, "/");
        assert!(std::str::from_utf8(&page.body)
            .unwrap()
            .contains(r#"data-src="/lab.json" data-mode="lab""#));
        let data = a.handle(&http::Method::GET, "/lab.json");
        assert!(std::str::from_utf8(&data.body)
            .unwrap()
            .contains("loopback"));
    }
}
