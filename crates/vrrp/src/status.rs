//! What `/status` and `/metrics` show, per instance.
//!
//! The driver writes an [`InstanceStatus`] snapshot under a mutex on every
//! change; the admin handler only reads it, so a busy or stuck driver never
//! blocks the page an operator opens to find out why.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::state::State;
use crate::validate::Reject;

type Labels = Vec<(String, String)>;

/// The last state change.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LastTransition {
    pub from: String,
    pub to: String,
    pub reason: String,
    /// Unix time in milliseconds.
    pub at_ms: u128,
}

/// One tracked check as shown in `/status`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TrackStatus {
    pub check: String,
    pub health: &'static str,
    pub weight: u16,
}

/// One instance as `/status` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: String,
    pub priority: u8,
    pub effective_priority: u8,
    pub master: Option<IpAddr>,
    pub vips: Vec<String>,
    pub last_transition: Option<LastTransition>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub transitions: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub tracks: Vec<TrackStatus>,
}

pub type SharedStatus = Arc<Mutex<InstanceStatus>>;

/// Prometheus series for every instance of this daemon.
#[derive(Clone, Default)]
pub struct Metrics {
    pub state: Family<Labels, Gauge>,
    pub priority: Family<Labels, Gauge>,
    pub sent: Family<Labels, Counter>,
    pub received: Family<Labels, Counter>,
    pub rejected: Family<Labels, Counter>,
    pub transitions: Family<Labels, Counter>,
}

// === impl Metrics ===

impl Metrics {
    pub fn register(&self, reg: &mut Registry) {
        reg.register(
            "vrrp_state",
            "Instance state: 0 init, 1 backup, 2 master, 3 fault",
            self.state.clone(),
        );
        reg.register(
            "vrrp_effective_priority",
            "Priority after tracking weights",
            self.priority.clone(),
        );
        reg.register(
            "vrrp_adverts_sent",
            "Advertisements sent",
            self.sent.clone(),
        );
        reg.register(
            "vrrp_adverts_received",
            "Valid advertisements received",
            self.received.clone(),
        );
        reg.register(
            "vrrp_rejected_packets",
            "Received packets discarded, by reason",
            self.rejected.clone(),
        );
        reg.register(
            "vrrp_transitions",
            "State transitions, by new state",
            self.transitions.clone(),
        );
    }

    /// Creates the per-reason series at 0 so dashboards see them before the first reject.
    pub fn init_instance(&self, instance: &str) {
        for r in Reject::LABELS {
            let _ = self
                .rejected
                .get_or_create(&labels(instance, Some(("reason", r))));
        }
    }
}

pub fn labels(instance: &str, extra: Option<(&str, &str)>) -> Labels {
    let mut l = vec![("instance".to_owned(), instance.to_owned())];
    if let Some((k, v)) = extra {
        l.push((k.to_owned(), v.to_owned()));
    }
    l
}

pub fn state_code(s: State) -> i64 {
    match s {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// `/status` body for all instances.
pub fn render(all: &[SharedStatus]) -> serde_json::Value {
    let instances: Vec<serde_json::Value> = all
        .iter()
        .map(|s| match s.lock() {
            Ok(g) => serde_json::to_value(&*g).unwrap_or_default(),
            Err(p) => serde_json::to_value(&*p.into_inner()).unwrap_or_default(),
        })
        .collect();
    serde_json::json!({ "instances": instances })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_metrics_pages() {
        let s: SharedStatus = Arc::new(Mutex::new(InstanceStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            version: 3,
            state: "MASTER".into(),
            priority: 100,
            effective_priority: 80,
            master: Some("192.0.2.133".parse().expect("ip")),
            vips: vec!["192.0.2.88/24".into()],
            last_transition: None,
            adverts_sent: 3,
            adverts_received: 0,
            transitions: 2,
            rejected: BTreeMap::from([("bad_ttl", 1)]),
            tracks: vec![],
        }));
        let v = render(&[s]);
        assert_eq!(v["instances"][0]["name"], "VI_1");
        assert_eq!(v["instances"][0]["effective_priority"], 80);
        assert_eq!(v["instances"][0]["rejected"]["bad_ttl"], 1);

        let m = Metrics::default();
        let mut reg = Registry::default();
        m.register(&mut reg);
        m.init_instance("VI_1");
        m.rejected
            .get_or_create(&labels("VI_1", Some(("reason", "bad_ttl"))))
            .inc();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encode");
        assert!(
            out.contains("vrrp_rejected_packets_total{instance=\"VI_1\",reason=\"bad_ttl\"} 1"),
            "{out}"
        );
        assert!(
            out.contains(
                "vrrp_rejected_packets_total{instance=\"VI_1\",reason=\"bad_checksum\"} 0"
            ),
            "{out}"
        );
    }
}
