//! The notification coalescer as a table: (what happens at t ms) -> what is
//! announced. Pure: no clock, no tasks.

use std::time::Duration;

use stackd_vrrp::coalesce::{Coalescer, Poll};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn c() -> Coalescer<&'static str, &'static str> {
    // settle 100 ms, at most one announcement per second
    Coalescer::new(MS(100), MS(1000), |s| *s)
}

/// (t ms, a transition to a state, or `None` for a poll).
type Step = (u64, Option<&'static str>);
/// (name, steps, announced (t, state), coalesced).
type Row = (&'static str, Vec<Step>, Vec<(u64, &'static str)>, u64);

/// Feeds `(t, Some(state))` transitions and `(t, None)` polls; returns what
/// was delivered, with its time.
fn run(events: &[Step]) -> (Vec<(u64, &'static str)>, u64) {
    let mut c = c();
    let mut out = Vec::new();
    for &(t, e) in events {
        match e {
            Some(s) => {
                c.observe(s, MS(t));
            }
            None => {
                if let Poll::Deliver(s) = c.poll(MS(t)) {
                    out.push((t, s));
                }
            }
        }
    }
    (out, c.coalesced())
}

#[test]
fn coalescing_table() {
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("a state that lasts is announced after settle",
            vec![(0, Some("BACKUP")), (50, None), (100, None)], vec![(100, "BACKUP")], 0),
        ("a flap within settle announces the last state only",
            vec![(0, Some("BACKUP")), (40, Some("MASTER")), (100, None), (140, None)], vec![(140, "MASTER")], 1),
        ("the second announcement waits for min_gap",
            vec![(0, Some("BACKUP")), (100, None), (200, Some("MASTER")), (300, None), (1100, None)],
            vec![(100, "BACKUP"), (1100, "MASTER")], 0),
        ("flapping back to the announced state announces nothing",
            vec![(0, Some("MASTER")), (100, None), (500, Some("BACKUP")), (550, Some("MASTER")), (1100, None)],
            vec![(100, "MASTER")], 2),
        ("a storm is one announcement per min_gap, the latest state each time",
            vec![(0, Some("MASTER")), (100, None),
                 (200, Some("BACKUP")), (400, Some("MASTER")), (600, Some("BACKUP")), (1100, None),
                 (1200, Some("MASTER")), (1400, Some("BACKUP")), (1600, Some("MASTER")), (2100, None)],
            vec![(100, "MASTER"), (1100, "BACKUP"), (2100, "MASTER")], 4),
    ];
    for (name, events, want, coalesced) in rows {
        let (got, n) = run(&events);
        assert_eq!(got, want, "{name}");
        assert_eq!(n, coalesced, "{name}: coalesced");
    }
}

#[test]
fn poll_says_when_to_look_again() {
    let mut c = c();
    assert_eq!(c.poll(MS(0)), Poll::Idle);
    assert_eq!(c.observe("BACKUP", MS(0)), MS(100));
    assert_eq!(c.poll(MS(10)), Poll::Wait(MS(100)));
    assert_eq!(c.poll(MS(100)), Poll::Deliver("BACKUP"));
    assert_eq!(
        c.observe("MASTER", MS(150)),
        MS(1100),
        "min_gap after the last one"
    );
}

#[test]
fn stop_goes_out_at_once_and_only_once() {
    let mut c = c();
    c.observe("MASTER", MS(0));
    assert_eq!(c.poll(MS(100)), Poll::Deliver("MASTER"));
    c.observe("BACKUP", MS(200));
    // Within min_gap, pending BACKUP: STOP replaces it and does not wait.
    assert_eq!(c.stop("STOP", MS(210)), Some("STOP"));
    assert_eq!(c.coalesced(), 1);
    assert_eq!(c.stop("STOP", MS(220)), None, "announced already");
    // A pending STOP (the driver's last transition) is not counted as coalesced.
    let mut fresh = self::c();
    fresh.observe("STOP", MS(0));
    assert_eq!(fresh.stop("STOP", MS(1)), Some("STOP"));
    assert_eq!(fresh.coalesced(), 0);
}
