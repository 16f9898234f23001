//! What the live page draws over time, kept by the lab so that a page opened
//! now shows the last minutes at once: request and error rates per backend
//! (from the proxy's cumulative counters), and who held the VIP with every
//! failover and the gap a client saw. Pure: samples in, JSON out.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

/// Samples kept: two minutes at one per second.
pub const POINTS: usize = 120;
/// Timeline entries kept (segments, outages).
const EVENTS: usize = 200;

/// Cumulative (requests, failures) per server name.
type Counters = BTreeMap<String, (f64, f64)>;

/// Per-server rates, one point per sample.
#[derive(Debug, Default)]
pub struct Series {
    t_ms: VecDeque<u64>,
    rps: BTreeMap<String, VecDeque<f64>>,
    errors: BTreeMap<String, VecDeque<f64>>,
    last: Option<(u64, Counters)>,
}

impl Series {
    /// Adds a sample at `now_ms` from the proxy's servers (each with
    /// `upstream`, `addr`, cumulative `requests` and `failures`). A counter
    /// that went back (a proxy restart) counts as 0 for that second.
    pub fn push(&mut self, now_ms: u64, servers: &[Value]) {
        let counters: Counters = servers
            .iter()
            .map(|s| {
                let name = match s.get("node_id").and_then(Value::as_str) {
                    Some(n) => format!("{} {n}", s["addr"].as_str().unwrap_or("")),
                    None => s["addr"].as_str().unwrap_or("").to_owned(),
                };
                let n = |k: &str| s.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                (name, (n("requests"), n("failures")))
            })
            .collect();
        if let Some((then, before)) = &self.last {
            let dt = (now_ms.saturating_sub(*then) as f64 / 1000.0).max(0.001);
            self.t_ms.push_back(now_ms);
            for (name, (req, fail)) in &counters {
                let (r0, f0) = before.get(name).copied().unwrap_or((*req, *fail));
                let rate = |a: f64, b: f64| if a >= b { (a - b) / dt } else { 0.0 };
                let len = self.t_ms.len() - 1;
                let pad = |q: &mut VecDeque<f64>| {
                    while q.len() < len {
                        q.push_back(0.0);
                    }
                };
                let r = self.rps.entry(name.clone()).or_default();
                pad(r);
                r.push_back(rate(*req, r0));
                let e = self.errors.entry(name.clone()).or_default();
                pad(e);
                e.push_back(rate(*fail, f0));
            }
            let len = self.t_ms.len();
            for q in self.rps.values_mut().chain(self.errors.values_mut()) {
                while q.len() < len {
                    q.push_back(0.0);
                }
                while q.len() > POINTS {
                    q.pop_front();
                }
            }
            while self.t_ms.len() > POINTS {
                self.t_ms.pop_front();
            }
        }
        self.last = Some((now_ms, counters));
    }

    pub fn to_json(&self) -> Value {
        let servers: serde_json::Map<String, Value> = self
            .rps
            .iter()
            .map(|(name, rps)| {
                let errors = self.errors.get(name).cloned().unwrap_or_default();
                (name.clone(), json!({"rps": rps, "errors": errors}))
            })
            .collect();
        json!({"t_ms": self.t_ms, "servers": servers})
    }
}

/// Who held the VIP when, and when the client got no answer.
#[derive(Debug, Default)]
pub struct Timeline {
    /// (holder, from_ms, to_ms); the last one is open and extended on each sample.
    segments: VecDeque<(String, u64, u64)>,
    /// (from_ms, to_ms) of client outages: last answer before to first answer after.
    outages: VecDeque<(u64, u64)>,
    last_ok_ms: Option<u64>,
    failing_since: Option<u64>,
    start_ms: Option<u64>,
}

impl Timeline {
    /// Who holds the VIP at `now_ms` (`None`: nobody, or both).
    pub fn holder(&mut self, now_ms: u64, holder: Option<&str>) {
        self.start_ms.get_or_insert(now_ms);
        let h = holder.unwrap_or("none");
        match self.segments.back_mut() {
            Some((cur, _, to)) if cur == h => *to = now_ms,
            _ => {
                if let Some((_, _, to)) = self.segments.back_mut() {
                    *to = now_ms;
                }
                self.segments.push_back((h.to_owned(), now_ms, now_ms));
            }
        }
        while self.segments.len() > EVENTS {
            self.segments.pop_front();
        }
    }

    /// One client request through the VIP, answered (`ok`) or not, at `at_ms`.
    pub fn probe(&mut self, at_ms: u64, ok: bool) {
        self.start_ms.get_or_insert(at_ms);
        if ok {
            if self.failing_since.take().is_some() {
                let from = self.last_ok_ms.unwrap_or(at_ms);
                self.outages.push_back((from, at_ms));
                while self.outages.len() > EVENTS {
                    self.outages.pop_front();
                }
            }
            self.last_ok_ms = Some(at_ms);
        } else if self.failing_since.is_none() {
            self.failing_since = Some(at_ms);
        }
    }

    /// The page's view: segments, outages (an open one up to `now_ms`), and
    /// failovers: each change from one holder to another (a moment with no
    /// holder, or two, in between is part of it) with the gap of the outage
    /// around it.
    pub fn to_json(&self, now_ms: u64) -> Value {
        let mut outages: Vec<(u64, u64, bool)> =
            self.outages.iter().map(|&(a, b)| (a, b, false)).collect();
        if self.failing_since.is_some() {
            outages.push((self.last_ok_ms.unwrap_or(now_ms), now_ms, true));
        }
        let held: Vec<&(String, u64, u64)> = self
            .segments
            .iter()
            .filter(|(h, _, _)| h != "none")
            .collect();
        let failovers: Vec<Value> = held
            .iter()
            .zip(held.iter().skip(1))
            .filter(|((from, _, _), (to, _, _))| from != to)
            .map(|((from, _, _), (to, at, _))| {
                // The outage the client saw around this change: the holder is
                // sampled once a second, so the switch happened up to ~1 s before.
                let gap = outages
                    .iter()
                    .filter(|(a, b, _)| *a <= at + 500 && *b + 1_500 >= *at)
                    .map(|(a, b, _)| b - a)
                    .max();
                json!({"at_ms": at, "from": from, "to": to, "gap_ms": gap})
            })
            .collect();
        json!({
            "start_ms": self.start_ms,
            "now_ms": now_ms,
            "segments": self.segments.iter().map(|(h, a, b)| json!({"holder": h, "from_ms": a, "to_ms": b})).collect::<Vec<_>>(),
            "outages": outages.iter().map(|(a, b, open)| json!({"from_ms": a, "to_ms": b, "open": open})).collect::<Vec<_>>(),
            "failovers": failovers,
        })
    }
}

/// Milliseconds since the Unix epoch (the page draws wall-clock times).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(addr: &str, req: u64, fail: u64) -> Value {
        json!({"addr": addr, "requests": req, "failures": fail})
    }

    #[test]
    fn series_turns_counters_into_rates() {
        let mut s = Series::default();
        s.push(1_000, &[srv("a", 10, 0), srv("b", 5, 0)]);
        assert_eq!(s.to_json()["t_ms"].as_array().unwrap().len(), 0);
        s.push(2_000, &[srv("a", 30, 1), srv("b", 5, 0)]);
        s.push(2_500, &[srv("a", 2, 1), srv("b", 10, 3)]); // a restarted
        let j = s.to_json();
        assert_eq!(j["t_ms"], json!([2000, 2500]));
        assert_eq!(j["servers"]["a"]["rps"], json!([20.0, 0.0]));
        assert_eq!(j["servers"]["a"]["errors"], json!([1.0, 0.0]));
        assert_eq!(j["servers"]["b"]["rps"], json!([0.0, 10.0]));
        assert_eq!(j["servers"]["b"]["errors"], json!([0.0, 6.0]));
        for i in 0..200 {
            s.push(3_000 + i * 1000, &[srv("a", 0, 0)]);
        }
        let j = s.to_json();
        assert_eq!(j["t_ms"].as_array().unwrap().len(), POINTS);
        assert_eq!(j["servers"]["b"]["rps"].as_array().unwrap().len(), POINTS);
    }

    #[test]
    fn timeline_marks_failovers_with_the_gap_the_client_saw() {
        let mut t = Timeline::default();
        t.holder(0, Some("px1"));
        t.probe(100, true);
        t.holder(1_000, Some("px1"));
        t.probe(1_050, true);
        t.probe(1_100, false);
        t.probe(1_300, false);
        t.holder(2_000, Some("px2"));
        t.probe(1_450, true);
        t.holder(3_000, Some("px2"));
        let j = t.to_json(3_000);
        assert_eq!(j["segments"].as_array().unwrap().len(), 2);
        assert_eq!(j["segments"][0]["to_ms"], 2000);
        assert_eq!(
            j["outages"],
            json!([{"from_ms": 1050, "to_ms": 1450, "open": false}])
        );
        assert_eq!(
            j["failovers"],
            json!([{"at_ms": 2000, "from": "px1", "to": "px2", "gap_ms": 400}])
        );
        // A change far from any outage saw no gap.
        t.holder(9_000, Some("px1"));
        assert_eq!(t.to_json(9_000)["failovers"][1]["gap_ms"], Value::Null);
        // An outage still going on is drawn up to now.
        t.probe(3_100, false);
        let j = t.to_json(4_000);
        assert_eq!(
            j["outages"][1],
            json!({"from_ms": 1450, "to_ms": 4000, "open": true})
        );
    }

    #[test]
    fn a_moment_without_a_holder_is_part_of_one_failover() {
        let mut t = Timeline::default();
        t.holder(0, Some("px1"));
        t.holder(1_000, None); // released, the peer not yet master
        t.holder(1_300, Some("px2"));
        t.holder(2_000, None); // both hold it during a hand-over
        t.holder(2_500, Some("px2"));
        t.holder(3_000, Some("px1"));
        let j = t.to_json(3_000);
        assert_eq!(j["segments"].as_array().unwrap().len(), 6);
        let moves: Vec<(&str, &str, u64)> = j["failovers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["from"].as_str().unwrap(),
                    f["to"].as_str().unwrap(),
                    f["at_ms"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(moves, [("px1", "px2", 1_300), ("px2", "px1", 3_000)]);
    }
}
