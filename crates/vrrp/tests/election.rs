//! Elections among N routers on an in-memory bus with a virtual clock: no
//! tokio, no sockets, fully deterministic. holo's rt1/rt2/rt3 idea.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use stackd_vrrp::packet::Version;
use stackd_vrrp::state::{Action, Event, Params, State, VirtualRouter};

const LATENCY: Duration = Duration::from_micros(200);

struct Node {
    vr: VirtualRouter,
    alive: bool,
    master_down: Option<Duration>,
    adver: Option<Duration>,
    /// Pending deliveries to this node: (at, event).
    inbox: Vec<(Duration, Event)>,
}

struct Bus {
    now: Duration,
    nodes: Vec<Node>,
    /// (time, node index, new state) for every transition.
    log: Vec<(Duration, usize, State)>,
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

impl Bus {
    fn new(version: Version, interval: Duration, routers: &[(u8, u8)]) -> Bus {
        let nodes = routers
            .iter()
            .map(|&(prio, last)| Node {
                vr: VirtualRouter::new(Params {
                    version,
                    priority: prio,
                    adver_int: interval,
                    preempt: true,
                    preempt_delay: Duration::ZERO,
                    primary: ip(last),
                }),
                alive: false,
                master_down: None,
                adver: None,
                inbox: Vec::new(),
            })
            .collect();
        Bus {
            now: Duration::ZERO,
            nodes,
            log: Vec::new(),
        }
    }

    fn apply(&mut self, i: usize, event: Event) {
        let actions = self.nodes[i].vr.step(event, self.now);
        for a in actions {
            match a {
                Action::SendAdvert { priority } => {
                    let src = self.nodes[i].vr.params().primary;
                    let interval = self.nodes[i].vr.params().adver_int;
                    for (j, n) in self.nodes.iter_mut().enumerate() {
                        if j != i && n.alive {
                            n.inbox.push((
                                self.now + LATENCY,
                                Event::Advert {
                                    src,
                                    priority,
                                    interval,
                                },
                            ));
                        }
                    }
                }
                Action::ArmMasterDown(d) => self.nodes[i].master_down = Some(self.now + d),
                Action::ArmAdver(d) => self.nodes[i].adver = Some(self.now + d),
                Action::CancelTimers => {
                    self.nodes[i].master_down = None;
                    self.nodes[i].adver = None;
                }
                Action::Transition { to, .. } => self.log.push((self.now, i, to)),
                Action::AddVips
                | Action::DelVips
                | Action::Announce
                | Action::Reannounce
                | Action::ArmRelease(_)
                | Action::CancelRelease => {}
            }
        }
    }

    fn start(&mut self, i: usize) {
        self.nodes[i].alive = true;
        self.apply(i, Event::Startup);
    }

    /// kill -9: silent, timers gone.
    fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.alive = false;
        n.master_down = None;
        n.adver = None;
        n.inbox.clear();
        let p = n.vr.params().clone();
        n.vr = VirtualRouter::new(p);
    }

    fn shutdown(&mut self, i: usize) {
        self.apply(i, Event::Shutdown);
        self.crash(i);
    }

    /// Runs every event due up to `until`, in time order.
    fn run_until(&mut self, until: Duration) {
        for _ in 0..1_000_000 {
            let mut next: Option<(Duration, usize, u8)> = None;
            for (i, n) in self.nodes.iter().enumerate() {
                let cands = [
                    (n.master_down, 0u8),
                    (n.adver, 1u8),
                    (n.inbox.iter().map(|m| m.0).min(), 2u8),
                ];
                for (t, kind) in cands {
                    if let Some(t) = t {
                        if next.is_none_or(|(bt, _, _)| t < bt) {
                            next = Some((t, i, kind));
                        }
                    }
                }
            }
            let Some((t, i, kind)) = next.filter(|(t, _, _)| *t <= until) else {
                self.now = until;
                return;
            };
            self.now = t;
            match kind {
                0 => {
                    self.nodes[i].master_down = None;
                    self.apply(i, Event::MasterDownExpired);
                }
                1 => {
                    self.nodes[i].adver = None;
                    self.apply(i, Event::AdverExpired);
                }
                _ => {
                    let k = self.nodes[i]
                        .inbox
                        .iter()
                        .position(|m| m.0 == t)
                        .unwrap_or(0);
                    let (_, ev) = self.nodes[i].inbox.remove(k);
                    self.apply(i, ev);
                }
            }
        }
        panic!("event storm: no progress to {until:?}");
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.nodes[i].vr.state() == State::Master)
            .collect()
    }

    /// When node `i` last became MASTER.
    fn became_master(&self, i: usize) -> Option<Duration> {
        self.log
            .iter()
            .rev()
            .find(|(_, n, s)| *n == i && *s == State::Master)
            .map(|(t, _, _)| *t)
    }
}

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn three_routers_elect_the_highest_and_fail_over_in_order() {
    let mut bus = Bus::new(Version::V3, MS(100), &[(100, 133), (99, 135), (50, 137)]);
    (0..3).for_each(|i| bus.start(i));
    bus.run_until(S(2));
    assert_eq!(bus.masters(), vec![0], "highest priority wins");

    // Crash the master: the priority-99 backup times out first (smaller skew).
    let t0 = bus.now;
    bus.crash(0);
    bus.run_until(t0 + S(2));
    assert_eq!(bus.masters(), vec![1]);
    let took = bus.became_master(1).map(|t| t - t0);
    println!("v3 100ms crash failover (virtual): {took:?}");
    assert!(
        took.is_some_and(|d| d <= Duration::from_micros(361_328)),
        "{took:?}"
    );

    // Graceful shutdown: priority 0 means Skew_Time, not Master_Down_Interval.
    let t1 = bus.now;
    bus.shutdown(1);
    bus.run_until(t1 + S(2));
    assert_eq!(bus.masters(), vec![2]);
    let took = bus.became_master(2).map(|t| t - t1);
    println!("v3 100ms planned switchover (virtual): {took:?}");
    assert!(took.is_some_and(|d| d < MS(100)), "{took:?}");

    // The primary returns and preempts.
    bus.start(0);
    bus.run_until(bus.now + S(2));
    assert_eq!(bus.masters(), vec![0]);
}

#[test]
fn equal_priorities_elect_the_higher_address() {
    let mut bus = Bus::new(Version::V3, MS(100), &[(100, 133), (100, 140), (100, 135)]);
    (0..3).for_each(|i| bus.start(i));
    bus.run_until(S(3));
    assert_eq!(bus.masters(), vec![1]);
}

#[test]
fn v2_one_second_failover_stays_within_master_down_interval() {
    let mut bus = Bus::new(Version::V2, S(1), &[(100, 133), (99, 135)]);
    bus.start(0);
    bus.start(1);
    bus.run_until(S(10));
    assert_eq!(bus.masters(), vec![0]);
    let t0 = bus.now;
    bus.crash(0);
    bus.run_until(t0 + S(5));
    let took = bus.became_master(1).map(|t| t - t0);
    println!("v2 1s crash failover (virtual): {took:?}");
    assert!(took.is_some_and(|d| d <= Duration::from_micros(3_613_281)));
    // Exactly one master at every moment after convergence: no flapping.
    assert_eq!(
        bus.log
            .iter()
            .filter(|(_, _, s)| *s == State::Master)
            .count(),
        2
    );
}

#[test]
fn owner_takes_over_immediately() {
    let mut bus = Bus::new(Version::V3, MS(100), &[(100, 133), (255, 135)]);
    bus.start(0);
    bus.run_until(S(1));
    assert_eq!(bus.masters(), vec![0]);
    let t0 = bus.now;
    bus.start(1);
    bus.run_until(t0 + MS(5));
    assert_eq!(
        bus.masters(),
        vec![1],
        "the owner starts as master and the other yields at its first advert"
    );
}
