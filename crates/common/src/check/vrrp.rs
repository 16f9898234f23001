//! Rules that need VRRP's timer arithmetic (RFC 3768 §6.1, RFC 5798 §6.1):
//! how long a failover takes, and whether a priority change can move the VIP.
//!
//! The same formulas as the `stackd-vrrp` timers, in microseconds like
//! keepalived, restated here because `stackd check` must not pull in the
//! VRRP engine.

use std::path::Path;
use std::time::Duration;

use super::{HostFile, Issue};
use crate::config::ha::Instance;
use crate::config::{format_duration, Config, KeyPath};

/// Skew_Time of a backup of `priority`: v2 skews by (256 − p)/256 s whatever
/// the interval; v3 by (256 − p) × interval / 256.
pub fn skew(inst: &Instance) -> Duration {
    let weight = 256u64.saturating_sub(u64::from(inst.priority.min(255)));
    if inst.version == 2 {
        Duration::from_micros(weight * 1_000_000 / 256)
    } else {
        Duration::from_micros(weight * inst.advert_int.as_micros() as u64 / 256)
    }
}

/// Master_Down_Interval = 3 × advert_int + Skew_Time: how long this instance,
/// as backup, waits after the master's last advert before taking over.
pub fn master_down(inst: &Instance) -> Duration {
    inst.advert_int * 3 + skew(inst)
}

/// The arithmetic of [`master_down`], written out for a message.
pub fn master_down_text(inst: &Instance) -> String {
    let adv = format_duration(inst.advert_int);
    let skew = if inst.version == 2 {
        format!("(256 − {}) / 256 s", inst.priority)
    } else {
        format!("(256 − {}) × {adv} / 256", inst.priority)
    };
    format!(
        "Master_Down_Interval = 3 × {adv} + {skew} = {}",
        secs(master_down(inst))
    )
}

/// `3.613s`: milliseconds shown, as operators compare with timeouts.
pub fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn instances(c: &Config) -> impl Iterator<Item = (usize, &Instance)> {
    c.ha.iter().flat_map(|h| h.instance.iter().enumerate())
}

fn at(i: usize) -> KeyPath {
    KeyPath::root("ha").key("instance").index(i)
}

fn is_v4(inst: &Instance) -> bool {
    inst.virtual_ipaddress
        .first()
        .is_none_or(|v| v.addr().is_ipv4())
}

/// Two instances on one interface with one VRID and address family share a
/// virtual MAC (00-00-5E-00-01-VRID for IPv4, -02- for IPv6, RFC 5798 §7.3)
/// and read each other's adverts. The table check catches this within one
/// VRRP version; this one also across versions 2 and 3.
pub fn vrids_share_interface(file: usize, c: &Config, out: &mut Vec<Issue>) {
    let all: Vec<(usize, &Instance)> = instances(c).collect();
    for (n, &(i, a)) in all.iter().enumerate() {
        let clash = all[..n].iter().find(|(_, b)| {
            b.interface == a.interface
                && b.virtual_router_id == a.virtual_router_id
                && is_v4(b) == is_v4(a)
                && b.version != a.version
        });
        if let Some((_, b)) = clash {
            out.push(Issue::error(
                file,
                at(i).key("virtual_router_id"),
                format!(
                    "VRID {} on {} is also used by instance \"{}\" (VRRPv{} here, v{} there): both would own virtual MAC 00:00:5e:00:0{}:{:02x} and read each other's adverts; give one another VRID",
                    a.virtual_router_id, a.interface, b.name, a.version, b.version,
                    if is_v4(a) { 1 } else { 2 }, a.virtual_router_id
                ),
            ));
        }
    }
}

/// A failover leaves clients unanswered for up to Master_Down_Interval. When
/// that is longer than the proxy's own upstream timeouts, a client that waits
/// as long as this proxy waits for a backend gives up before the standby
/// answers: the stack's slowest step is the one the operator did not tune.
pub fn failover_within_proxy_timeouts(file: usize, c: &Config, out: &mut Vec<Issue>) {
    let Some(p) = &c.proxy else { return };
    let timeouts = [
        ("connect_timeout", p.connect_timeout),
        ("read_timeout", p.read_timeout),
        ("send_timeout", p.send_timeout),
    ];
    let Some(&(key, shortest)) = timeouts.iter().min_by_key(|(_, d)| *d) else {
        return;
    };
    for (i, inst) in instances(c) {
        let mdi = master_down(inst);
        if mdi > shortest {
            out.push(Issue::warning(
                file,
                at(i).key("advert_int"),
                format!(
                    "a failover takes up to {} (version {}), longer than proxy.{key} = {}: clients that wait as long as the proxy waits for a backend give up before the standby answers; shorten advert_int (version = 3 allows \"100ms\") or raise proxy.{key}",
                    master_down_text(inst), inst.version, format_duration(shortest)
                ),
            ));
        }
    }
}

/// Sessions must outlive a failover, or every client logs in again after one.
pub fn session_outlives_failover(files: &[HostFile], out: &mut Vec<Issue>) {
    let slowest = files
        .iter()
        .flat_map(|f| instances(&f.config))
        .max_by_key(|(_, inst)| master_down(inst));
    let Some((_, inst)) = slowest else { return };
    let mdi = master_down(inst);
    for (file, f) in files.iter().enumerate() {
        let Some(d) = &f.config.demo_backend else {
            continue;
        };
        if d.session_ttl <= mdi {
            out.push(Issue::warning(
                file,
                KeyPath::root("demo_backend").key("session_ttl"),
                format!(
                    "sessions idle for {} expire, but a failover of instance \"{}\" takes up to {}: a client idle through a failover loses its session; make session_ttl longer",
                    format_duration(d.session_ttl), inst.name, master_down_text(inst)
                ),
            ));
        }
    }
}

/// For the two proxy hosts: a failing track lowers this node's priority by
/// its weight. If the result is still above the peer's priority, the VIP
/// never moves when the check fails, which is the whole point of the track.
/// Instances are paired by VRID and family (they share one virtual router).
pub fn weights_move_the_vip(
    file: usize,
    a: &Config,
    _peer_file: usize,
    b: &Config,
    peer_path: &Path,
    out: &mut Vec<Issue>,
) {
    for (i, ia) in instances(a) {
        let Some((_, ib)) = instances(b)
            .find(|(_, ib)| ib.virtual_router_id == ia.virtual_router_id && is_v4(ib) == is_v4(ia))
        else {
            continue;
        };
        // This node holds the VIP while the peer is healthy only if it has the
        // higher priority, or the peer does not take the VIP back (no preempt).
        if ia.priority < ib.priority && ib.preempt {
            continue;
        }
        let all: u16 = ia.track.iter().map(|t| t.weight).sum();
        for (j, t) in ia.track.iter().enumerate() {
            if t.weight == 0 {
                continue; // a failing weight-0 check means FAULT: the VIP moves
            }
            let left = i32::from(ia.priority) - i32::from(t.weight);
            if left < i32::from(ib.priority) {
                continue;
            }
            let tie = if left == i32::from(ib.priority) {
                " (a tie goes to the higher primary address, so it may not move either)"
            } else {
                ""
            };
            let together = if all > t.weight {
                let l = i32::from(ia.priority) - i32::from(all);
                format!(
                    "; all tracks failing together give {} − {all} = {l}, {}",
                    ia.priority,
                    if l < i32::from(ib.priority) {
                        "which does move it"
                    } else {
                        "which does not move it either"
                    }
                )
            } else {
                String::new()
            };
            out.push(Issue::warning(
                file,
                at(i).key("track").index(j).key("weight"),
                format!(
                    "when this check fails, priority {} − weight {} = {left} is not below the peer's priority {} ({}, instance \"{}\"): the VIP never moves{tie}{together}; use a weight above {}, or weight = 0 to give the VIP up",
                    ia.priority, t.weight, ib.priority, peer_path.display(), ib.name,
                    i32::from(ia.priority) - i32::from(ib.priority)
                ),
            ));
        }
    }
}
