//! What `/status` and `/metrics` show, per instance.
//!
//! The driver writes an [`InstanceStatus`] snapshot under a mutex on every
//! change; the admin handler only reads it, so a busy or stuck driver never
//! blocks the page an operator opens to find out why.
//!
//! Metrics follow the other stackd services: prefix `stackd_vrrp_`, label
//! `vrrp_instance` (Prometheus' `instance` belongs to the scrape target), and
//! the state as one 0/1 series per state, the way `node_systemd_unit_state`
//! does it, so an alert is `stackd_vrrp_state{state="FAULT"} == 1`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use stackd_common::config::ha::InstanceSpec;

use crate::state::State;
use crate::validate::Reject;

/// The last state change.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LastTransition {
    pub from: State,
    pub to: State,
    pub reason: String,
    /// Unix time in milliseconds.
    pub at_ms: u128,
}

/// One tracked check as shown in `/status`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TrackStatus {
    pub check: String,
    pub health: &'static str,
    pub weight: u8,
}

/// One instance as `/status` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: State,
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub vrrp_instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub vrrp_instance: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub vrrp_instance: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToLabels {
    pub vrrp_instance: String,
    pub to: &'static str,
}

/// Prometheus series for every instance of this daemon.
#[derive(Clone, Default)]
pub struct Metrics {
    pub state: Family<StateLabels, Gauge>,
    pub priority: Family<InstanceLabels, Gauge>,
    pub sent: Family<InstanceLabels, Counter>,
    pub received: Family<InstanceLabels, Counter>,
    pub rejected: Family<ReasonLabels, Counter>,
    pub transitions: Family<ToLabels, Counter>,
    pub notifications: Family<InstanceLabels, Counter>,
    pub coalesced: Family<InstanceLabels, Counter>,
}

// === impl InstanceStatus ===

impl InstanceStatus {
    /// The status of `spec` before it starts.
    pub fn new(spec: &InstanceSpec) -> InstanceStatus {
        InstanceStatus {
            name: spec.name.clone(),
            interface: spec.interface.clone(),
            vrid: spec.vrid.get(),
            version: spec.version.number(),
            state: State::Initialize,
            priority: spec.priority.get(),
            effective_priority: spec.priority.get(),
            master: None,
            vips: spec.vips.iter().map(ToString::to_string).collect(),
            last_transition: None,
            adverts_sent: 0,
            adverts_received: 0,
            transitions: 0,
            rejected: BTreeMap::new(),
            tracks: spec
                .tracks
                .iter()
                .map(|t| TrackStatus {
                    check: t.check.to_string(),
                    health: "unknown",
                    weight: t.on_down.weight(),
                })
                .collect(),
        }
    }
}

// === impl Metrics ===

impl Metrics {
    /// Registers every family under `stackd_vrrp_`.
    pub fn register(&self, reg: &mut Registry) {
        let reg = reg.sub_registry_with_prefix("stackd_vrrp");
        reg.register(
            "state",
            "1 for the state the instance is in, 0 for the others",
            self.state.clone(),
        );
        reg.register(
            "effective_priority",
            "Priority after tracking weights",
            self.priority.clone(),
        );
        reg.register("adverts_sent", "Advertisements sent", self.sent.clone());
        reg.register(
            "adverts_received",
            "Valid advertisements received",
            self.received.clone(),
        );
        reg.register(
            "rejected_packets",
            "Received packets discarded, by reason",
            self.rejected.clone(),
        );
        reg.register(
            "transitions",
            "State transitions, by new state",
            self.transitions.clone(),
        );
        reg.register(
            "notifications",
            "State changes announced (notify script, webhook, mail)",
            self.notifications.clone(),
        );
        reg.register(
            "notifications_coalesced",
            "State changes not announced: they did not last, or came faster than one per second",
            self.coalesced.clone(),
        );
    }

    /// Creates every series of `instance` at 0, so dashboards see them before
    /// the first event.
    pub(crate) fn init_instance(&self, instance: &str) {
        for r in Reject::LABELS {
            let _ = self.rejected.get_or_create(&reason(instance, r));
        }
        self.set_state(instance, State::Initialize);
        let l = labels(instance);
        for f in [
            &self.sent,
            &self.received,
            &self.notifications,
            &self.coalesced,
        ] {
            let _ = f.get_or_create(&l);
        }
    }

    pub(crate) fn set_state(&self, instance: &str, now: State) {
        for s in State::ALL {
            let l = StateLabels {
                vrrp_instance: instance.to_owned(),
                state: s.as_str(),
            };
            self.state.get_or_create(&l).set(i64::from(s == now));
        }
    }

    pub(crate) fn notified(&self, instance: &str) {
        self.notifications.get_or_create(&labels(instance)).inc();
    }

    /// Raises the coalesced counter to `total`.
    pub(crate) fn coalesced(&self, instance: &str, total: u64) {
        let c = self.coalesced.get_or_create(&labels(instance));
        c.inc_by(total.saturating_sub(c.get()));
    }
}

pub(crate) fn labels(instance: &str) -> InstanceLabels {
    InstanceLabels {
        vrrp_instance: instance.to_owned(),
    }
}

pub(crate) fn reason(instance: &str, reason: &'static str) -> ReasonLabels {
    ReasonLabels {
        vrrp_instance: instance.to_owned(),
        reason,
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

    fn spec() -> InstanceSpec {
        let text = "[ha]\n[[ha.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nversion = 3\nadvert_int = \"100ms\"\nvirtual_ipaddress = [\"192.0.2.88/24\"]\n";
        stackd_common::Config::from_toml_str_for(
            text,
            std::path::Path::new("t.toml"),
            stackd_common::config::Section::Ha,
        )
        .ok()
        .and_then(|l| l.ha_spec)
        .map(|s| s.instances[0].clone())
        .expect("valid spec")
    }

    #[test]
    fn status_and_metrics_pages() {
        let mut st = InstanceStatus::new(&spec());
        st.state = State::Master;
        st.effective_priority = 80;
        st.rejected.insert("bad_ttl", 1);
        let s: SharedStatus = Arc::new(Mutex::new(st));
        let v = render(&[s]);
        assert_eq!(v["instances"][0]["name"], "VI_1");
        assert_eq!(v["instances"][0]["state"], "MASTER");
        assert_eq!(v["instances"][0]["effective_priority"], 80);
        assert_eq!(v["instances"][0]["rejected"]["bad_ttl"], 1);

        let m = Metrics::default();
        let mut reg = Registry::default();
        m.register(&mut reg);
        m.init_instance("VI_1");
        m.rejected.get_or_create(&reason("VI_1", "bad_ttl")).inc();
        m.set_state("VI_1", State::Backup);
        m.coalesced("VI_1", 3);
        m.coalesced("VI_1", 5);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encode");
        for want in [
            "stackd_vrrp_rejected_packets_total{vrrp_instance=\"VI_1\",reason=\"bad_ttl\"} 1",
            "stackd_vrrp_rejected_packets_total{vrrp_instance=\"VI_1\",reason=\"bad_interval\"} 0",
            "stackd_vrrp_rejected_packets_total{vrrp_instance=\"VI_1\",reason=\"not_a_peer\"} 0",
            "stackd_vrrp_state{vrrp_instance=\"VI_1\",state=\"BACKUP\"} 1",
            "stackd_vrrp_state{vrrp_instance=\"VI_1\",state=\"MASTER\"} 0",
            "stackd_vrrp_state{vrrp_instance=\"VI_1\",state=\"INIT\"} 0",
            "stackd_vrrp_notifications_coalesced_total{vrrp_instance=\"VI_1\"} 5",
            "stackd_vrrp_notifications_total{vrrp_instance=\"VI_1\"} 0",
        ] {
            assert!(out.contains(want), "{want} missing from:\n{out}");
        }
        assert!(!out.contains("{instance="), "{out}");
    }
}
