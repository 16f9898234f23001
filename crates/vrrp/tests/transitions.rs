//! Every transition of RFC 5798 §6.4, table-driven: (start state, event) ->
//! (end state, actions). Routers are driven into the start state through
//! real events, so each row also exercises the path there.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use stackd_vrrp::packet::Version;
use stackd_vrrp::state::{Action, Event, Params, Reason, State, VirtualRouter};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn params(version: Version, priority: u8) -> Params {
    Params {
        version,
        priority,
        adver_int: if version == Version::V3 {
            MS(100)
        } else {
            Duration::from_secs(1)
        },
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary: ip(135),
    }
}

fn router_in(state: State, p: Params) -> VirtualRouter {
    let mut r = VirtualRouter::new(p);
    match state {
        State::Initialize => {}
        State::Backup => {
            r.step(Event::Startup, Duration::ZERO);
        }
        State::Master => {
            r.step(Event::Startup, Duration::ZERO);
            r.step(Event::MasterDownExpired, Duration::ZERO);
        }
        State::Fault => {
            let prio = r.priority();
            r.step(
                Event::Health {
                    fault: true,
                    handover: false,
                    priority: prio,
                },
                Duration::ZERO,
            );
            r.step(Event::Startup, Duration::ZERO);
        }
    }
    assert_eq!(r.state(), state);
    r
}

fn advert(src: u8, priority: u8, ms: u64) -> Event {
    Event::Advert {
        src: ip(src),
        priority,
        interval: MS(ms),
    }
}

/// (name, start state, priority, event, end state, actions).
type Row = (&'static str, State, u8, Event, State, Vec<Action>);

fn tr(from: State, to: State, reason: Reason) -> Action {
    Action::Transition { from, to, reason }
}

#[test]
fn rfc5798_transition_table() {
    use Action::*;
    use State::*;
    let v3 = Version::V3;
    // MDI for priority 99 at 100 ms: 300 ms + 61.328 ms; skew 61.328 ms.
    let mdi99 = Duration::from_micros(361_328);
    let skew99 = Duration::from_micros(61_328);
    let linger = stackd_vrrp::state::RELEASE_LINGER;
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("§6.4.1 startup, priority < 255 -> Backup", Initialize, 99, Event::Startup, Backup,
            vec![ArmMasterDown(mdi99), tr(Initialize, Backup, Reason::Startup)]),
        ("§6.4.1 startup, priority 255 -> Master", Initialize, 255, Event::Startup, Master,
            vec![SendAdvert { priority: 255 }, AddVips, Announce, ArmAdver(MS(100)), tr(Initialize, Master, Reason::AddressOwner)]),
        ("§6.4.1 adverts are ignored before startup", Initialize, 99, advert(133, 100, 100), Initialize, vec![]),
        ("§6.4.2 shutdown -> Initialize", Backup, 99, Event::Shutdown, Initialize,
            vec![CancelTimers, tr(Backup, Initialize, Reason::Shutdown)]),
        ("§6.4.2 Master_Down_Timer fires -> Master", Backup, 99, Event::MasterDownExpired, Master,
            vec![SendAdvert { priority: 99 }, AddVips, Announce, ArmAdver(MS(100)), tr(Backup, Master, Reason::MasterDown)]),
        ("§6.4.2 priority 0 -> Master_Down_Timer = Skew_Time", Backup, 99, advert(133, 0, 100), Backup,
            vec![ArmMasterDown(skew99)]),
        ("§6.4.2 higher priority -> reset Master_Down_Timer", Backup, 99, advert(133, 100, 100), Backup,
            vec![ArmMasterDown(mdi99)]),
        ("§6.4.2 equal priority -> reset Master_Down_Timer", Backup, 99, advert(133, 99, 100), Backup,
            vec![ArmMasterDown(mdi99)]),
        ("§6.4.2 v3 backup adopts the master's interval", Backup, 99, advert(133, 100, 200), Backup,
            vec![ArmMasterDown(Duration::from_micros(722_656))]),
        ("§6.4.2 lower priority with preempt -> discard", Backup, 99, advert(133, 50, 100), Backup, vec![]),
        ("§6.4.3 Adver_Timer fires -> advertise", Master, 99, Event::AdverExpired, Master,
            vec![SendAdvert { priority: 99 }, ArmAdver(MS(100))]),
        ("§6.4.3 shutdown -> priority 0, Initialize", Master, 99, Event::Shutdown, Initialize,
            vec![CancelTimers, SendAdvert { priority: 0 }, DelVips, tr(Master, Initialize, Reason::Shutdown)]),
        ("§6.4.3 priority 0 seen -> advertise at once", Master, 99, advert(133, 0, 100), Master,
            vec![SendAdvert { priority: 99 }, ArmAdver(MS(100))]),
        ("§6.4.3 higher priority -> Backup", Master, 99, advert(133, 100, 100), Backup,
            vec![CancelTimers, ArmRelease(linger), ArmMasterDown(mdi99), tr(Master, Backup, Reason::Preempted { by: ip(133), priority: 100 })]),
        ("§6.4.3 equal priority, higher address -> Backup", Master, 99, advert(140, 99, 100), Backup,
            vec![CancelTimers, ArmRelease(linger), ArmMasterDown(mdi99), tr(Master, Backup, Reason::Preempted { by: ip(140), priority: 99 })]),
        ("§6.4.3 equal priority, lower address -> discard; keepalived answers: advert + GARP", Master, 99, advert(133, 99, 100), Master,
            vec![SendAdvert { priority: 99 }, Announce, Reannounce]),
        ("§6.4.3 lower priority -> discard; keepalived answers: advert + GARP", Master, 99, advert(133, 50, 100), Master,
            vec![SendAdvert { priority: 99 }, Announce, Reannounce]),
        ("handover: a master whose service drains says priority 0, keeps the VIPs", Master, 99,
            Event::Health { fault: true, handover: true, priority: 99 }, Fault,
            vec![CancelTimers, SendAdvert { priority: 0 }, ArmRelease(mdi99), tr(Master, Fault, Reason::Handover)]),
        ("handover: a draining backup just goes quiet", Backup, 99,
            Event::Health { fault: true, handover: true, priority: 99 }, Fault, vec![CancelTimers, tr(Backup, Fault, Reason::Fault)]),
        ("reload: same state, new interval armed at once", Master, 99,
            Event::Reconfigure(Params { adver_int: MS(200), ..params(v3, 99) }), Master, vec![ArmAdver(MS(200))]),
        ("FAULT: a master whose check fails resigns with priority 0", Master, 99,
            Event::Health { fault: true, handover: false, priority: 99 }, Fault,
            vec![CancelTimers, SendAdvert { priority: 0 }, DelVips, tr(Master, Fault, Reason::Fault)]),
        ("FAULT: a backup whose check fails goes quiet", Backup, 99,
            Event::Health { fault: true, handover: false, priority: 99 }, Fault, vec![CancelTimers, tr(Backup, Fault, Reason::Fault)]),
        ("FAULT: recovery -> Backup", Fault, 99, Event::Health { fault: false, handover: false, priority: 99 }, Backup,
            vec![ArmMasterDown(mdi99), tr(Fault, Backup, Reason::FaultCleared)]),
        ("FAULT: adverts are ignored", Fault, 99, advert(133, 100, 100), Fault, vec![]),
        ("FAULT: shutdown -> Initialize", Fault, 99, Event::Shutdown, Initialize,
            vec![tr(Fault, Initialize, Reason::Shutdown)]),
        ("tracking lowers a master's priority: next advert carries it", Master, 99,
            Event::Health { fault: false, handover: false, priority: 49 }, Master, vec![]),
    ];
    for (name, from, prio, event, to, want) in rows {
        let mut r = router_in(from, params(v3, prio));
        let got = r.step(event, Duration::from_secs(10));
        assert_eq!(r.state(), to, "{name}");
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn fault_before_startup_waits_in_fault() {
    let mut r = VirtualRouter::new(params(Version::V3, 100));
    r.step(
        Event::Health {
            fault: true,
            handover: false,
            priority: 100,
        },
        Duration::ZERO,
    );
    let a = r.step(Event::Startup, Duration::ZERO);
    assert_eq!(a, vec![tr(State::Initialize, State::Fault, Reason::Fault)]);
    let a = r.step(
        Event::Health {
            fault: false,
            handover: false,
            priority: 100,
        },
        MS(500),
    );
    assert_eq!(r.state(), State::Backup);
    assert!(matches!(a[0], Action::ArmMasterDown(_)));
}

#[test]
fn tracked_priority_is_advertised() {
    let mut r = router_in(State::Master, params(Version::V3, 100));
    r.step(
        Event::Health {
            fault: false,
            handover: false,
            priority: 60,
        },
        MS(1),
    );
    assert_eq!(
        r.step(Event::AdverExpired, MS(2))[0],
        Action::SendAdvert { priority: 60 }
    );
}

#[test]
fn no_preempt_accepts_lower_priority_master() {
    let mut p = params(Version::V3, 100);
    p.preempt = false;
    let mut r = router_in(State::Backup, p);
    let a = r.step(advert(133, 50, 100), MS(1));
    assert_eq!(
        a,
        vec![Action::ArmMasterDown(Duration::from_micros(360_937))]
    );
}

#[test]
fn preempt_delay_defers_then_preempts() {
    let mut p = params(Version::V3, 100);
    p.preempt_delay = Duration::from_secs(2);
    let mut r = router_in(State::Backup, p);
    // Within the delay the lower-priority master is accepted (timer reset) ...
    assert_eq!(
        r.step(advert(133, 50, 100), Duration::from_secs(1)).len(),
        1
    );
    assert_eq!(r.step(advert(133, 50, 100), MS(2900)).len(), 1);
    // ... after it, discarded, so the Master_Down_Timer fires and we preempt.
    assert_eq!(r.step(advert(133, 50, 100), MS(3001)), vec![]);
}

#[test]
fn v2_ignores_advertised_interval_and_uses_second_skew() {
    let mut r = router_in(State::Backup, params(Version::V2, 99));
    let a = r.step(advert(133, 100, 3000), MS(1));
    assert_eq!(
        a,
        vec![Action::ArmMasterDown(Duration::from_micros(3_613_281))]
    );
    assert_eq!(
        r.step(advert(133, 0, 1000), MS(2)),
        vec![Action::ArmMasterDown(Duration::from_micros(613_281))]
    );
}

#[test]
fn master_address_is_reported() {
    let mut r = router_in(State::Backup, params(Version::V3, 99));
    assert_eq!(r.master(), None);
    r.step(advert(133, 100, 100), MS(1));
    assert_eq!(r.master(), Some(ip(133)));
    r.step(Event::MasterDownExpired, MS(2));
    assert_eq!(r.master(), Some(ip(135)));
}

/// The VIPs kept after MASTER (planned hand-over, preemption) go after the
/// new master is heard plus RELEASE_LINGER, at once when the service is gone,
/// and never while we are MASTER again.
#[test]
fn kept_vips_are_released_by_the_new_master_the_service_or_a_return() {
    use stackd_vrrp::state::RELEASE_LINGER;
    let drain = |fault| Event::Health {
        fault,
        handover: fault,
        priority: 100,
    };
    // Heard the new master: release after the linger.
    let mut r = router_in(State::Master, params(Version::V3, 100));
    r.step(drain(true), MS(1));
    assert!(r.holding());
    assert_eq!(
        r.step(advert(133, 99, 100), MS(70)),
        vec![Action::ArmRelease(RELEASE_LINGER)]
    );
    assert_eq!(
        r.step(Event::ReleaseExpired, MS(1070)),
        vec![Action::DelVips]
    );
    assert!(!r.holding());
    assert_eq!(r.step(Event::ReleaseExpired, MS(1080)), vec![], "once");
    // The service is gone (refused): release now.
    let mut r = router_in(State::Master, params(Version::V3, 100));
    r.step(drain(true), MS(1));
    let gone = Event::Health {
        fault: true,
        handover: false,
        priority: 100,
    };
    assert_eq!(
        r.step(gone, MS(50)),
        vec![Action::CancelRelease, Action::DelVips]
    );
    // Back before the release: MASTER again, the release is cancelled.
    let mut r = router_in(State::Master, params(Version::V3, 100));
    r.step(advert(140, 200, 100), MS(1));
    assert!(r.holding(), "preempted: kept for the linger");
    let a = r.step(Event::MasterDownExpired, MS(400));
    assert_eq!(
        a[..2],
        [Action::SendAdvert { priority: 100 }, Action::CancelRelease]
    );
    assert!(!r.holding());
    assert_eq!(
        r.step(Event::ReleaseExpired, MS(1001)),
        vec![],
        "MASTER keeps them"
    );
}

/// keepalived answers a lower-priority master at most once per advert
/// interval here: forged adverts must not make us a GARP amplifier.
#[test]
fn lower_priority_masters_are_answered_once_per_interval() {
    let mut r = router_in(State::Master, params(Version::V3, 100));
    assert_eq!(r.step(advert(133, 50, 100), MS(1000)).len(), 3);
    assert_eq!(r.step(advert(133, 50, 100), MS(1050)), vec![]);
    assert_eq!(r.step(advert(133, 50, 100), MS(1100)).len(), 3);
}
