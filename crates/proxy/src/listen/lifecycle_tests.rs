//! The lifecycle table, transition by transition, on a paused clock.

use std::time::Duration;

use tokio::time::{advance, Instant};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn t() -> Arc<Timeouts> {
    Arc::new(Timeouts {
        header: 100 * MS,
        body: BodyLimits {
            idle: 200 * MS,
            min_rate: 1000,
        },
        send: 300 * MS,
        keepalive: 400 * MS,
        tunnel: 500 * MS,
        linger: 600 * MS,
        linger_idle: 50 * MS,
    })
}

/// Events fed in order, each with the action it must produce.
type Steps<'a> = &'a [(Event, Action)];

/// Steps `events` from a fresh connection, each 10 ms apart, checking the
/// action of each.
async fn run(start: Lifecycle, steps: &[(Event, Action)]) -> Lifecycle {
    let mut c = start;
    for (i, (e, want)) in steps.iter().enumerate() {
        advance(10 * MS).await;
        let got = c.step(*e, Instant::now());
        assert_eq!(got, *want, "step {i}: {e:?} in {:?}", c.state());
    }
    c
}

fn kind(s: State) -> &'static str {
    match s {
        State::Fresh { .. } => "Fresh",
        State::FreshDraining { .. } => "FreshDraining",
        State::Head { .. } => "Head",
        State::Body(_) => "Body",
        State::Upstream { .. } => "Upstream",
        State::Response {
            rest: Rest::Read, ..
        } => "Response(read)",
        State::Response {
            rest: Rest::Unread, ..
        } => "Response(unread)",
        State::Idle { .. } => "Idle",
        State::Tunnel { .. } => "Tunnel",
        State::Linger { .. } => "Linger",
        State::H2Preface { .. } => "H2Preface",
        State::H2 { .. } => "H2",
        State::H2Draining { .. } => "H2Draining",
        State::Closed => "Closed",
    }
}

use Action::{Answer408, Close, Continue, GoAway, Linger as L};
use Event::*;

const RESPOND: Event = Event::Respond { close: false };

/// The HTTP/1 table: from each state, each event that matters there.
#[tokio::test(start_paused = true)]
async fn http1_transitions() {
    let body = HeadDone {
        body: true,
        keep_alive: true,
    };
    let bodyless = HeadDone {
        body: false,
        keep_alive: true,
    };
    #[rustfmt::skip]
    let table: &[(Steps<'_>, &str, Next)] = &[
        // A whole keep-alive exchange, then idle.
        (&[(HeadStarted, Continue), (body, Continue), (BodyBytes(5), Continue), (BodyDone, Continue),
           (RESPOND, Continue), (Wrote, Continue), (ResponseDone, Continue)], "Idle", Next::KeepAlive),
        // Idle, next request: Head again.
        (&[(bodyless, Continue), (RESPOND, Continue), (ResponseDone, Continue), (HeadStarted, Continue)],
         "Head", Next::KeepAlive),
        // A close-delimited response ends the connection.
        (&[(bodyless, Continue), (Respond { close: true }, Continue), (ResponseDone, Close)],
         "Closed", Next::Close),
        // Connection: close from the client.
        (&[(HeadDone { body: false, keep_alive: false }, Continue), (RESPOND, Continue),
           (ResponseDone, Close)], "Closed", Next::Close),
        // Never reuse before the body has ended: an early answer lingers.
        (&[(body, Continue), (BodyBytes(3), Continue), (RESPOND, Continue), (ResponseDone, L)],
         "Linger", Next::Close),
        // A refused head (400/414/431) lingers too.
        (&[(HeadStarted, Continue), (RESPOND, Continue), (ResponseDone, L), (Traffic, Continue)],
         "Linger", Next::Close),
        // A bodyless refusal after a complete head (404) keeps the connection.
        (&[(bodyless, Continue), (RESPOND, Continue), (ResponseDone, Continue)], "Idle", Next::KeepAlive),
        // Upgrade: a tunnel, alive while traffic flows.
        (&[(bodyless, Continue), (RESPOND, Continue), (Upgraded, Continue), (Traffic, Continue)],
         "Tunnel", Next::KeepAlive),
        // Events that cannot happen in a state change nothing.
        (&[(BodyBytes(1), Continue), (ResponseDone, Continue), (Traffic, Continue), (H2Ready, Continue)],
         "Fresh", Next::KeepAlive),
        // The peer going away ends everything.
        (&[(body, Continue), (PeerGone, Close), (HeadStarted, Close)], "Closed", Next::KeepAlive),
    ];
    for (i, (steps, want, next)) in table.iter().enumerate() {
        let c = run(Lifecycle::new(t(), Instant::now()), steps).await;
        assert_eq!((kind(c.state()), c.next()), (*want, *next), "row {i}");
    }
}

/// Draining: idle connections close at once; a request in flight finishes
/// and is not followed by another; a fresh connection's first request is
/// still served; tunnels and lingering closes wait for their own deadline
/// or the end of the grace period.
#[tokio::test(start_paused = true)]
async fn draining() {
    let bodyless = HeadDone {
        body: false,
        keep_alive: true,
    };
    #[rustfmt::skip]
    let table: &[(Steps<'_>, &str)] = &[
        (&[(Drain, Continue)], "FreshDraining"),
        (&[(Drain, Continue), (HeadStarted, Continue)], "Head"),
        (&[(Drain, Continue), (bodyless, Continue), (RESPOND, Continue), (ResponseDone, Close)], "Closed"),
        (&[(Drain, Continue), (Drain, Continue), (Expired, Close)], "Closed"),
        (&[(Drain, Continue), (PeerGone, Close)], "Closed"),
        (&[(bodyless, Continue), (RESPOND, Continue), (ResponseDone, Continue), (Drain, Close)], "Closed"),
        (&[(bodyless, Continue), (Drain, Continue), (RESPOND, Continue), (ResponseDone, Close)], "Closed"),
        (&[(HeadStarted, Continue), (Drain, Continue)], "Head"),
        (&[(bodyless, Continue), (RESPOND, Continue), (Upgraded, Continue), (Drain, Continue)], "Tunnel"),
        (&[(bodyless, Continue), (RESPOND, Continue), (Upgraded, Continue), (Drain, Continue),
           (PeerGone, Close)], "Closed"),
    ];
    for (i, (steps, want)) in table.iter().enumerate() {
        let c = run(Lifecycle::new(t(), Instant::now()), steps).await;
        assert_eq!(kind(c.state()), *want, "row {i}");
    }
}

/// A fresh connection drained waits for its first bytes until
/// `lingering_timeout` after the drain, or `client_header_timeout` after
/// accept if that comes first; once its head has begun, only the latter.
#[tokio::test(start_paused = true)]
async fn a_fresh_connection_drained_waits_for_its_first_bytes() {
    let t0 = Instant::now();
    let mut c = Lifecycle::new(t(), t0);
    advance(10 * MS).await;
    let drained = Instant::now();
    assert_eq!(c.step(Drain, drained), Continue);
    assert_eq!(c.next(), Next::Close);
    assert_eq!(
        c.deadline(),
        Some((drained + 50 * MS, Timer::LingeringIdle)),
        "lingering_timeout after the drain"
    );
    let mut late = Lifecycle::new(t(), t0);
    advance(70 * MS).await;
    late.step(Drain, Instant::now());
    assert_eq!(
        late.deadline(),
        Some((t0 + 100 * MS, Timer::ClientHeader)),
        "client_header_timeout from accept comes first"
    );
    c.step(HeadStarted, Instant::now());
    assert_eq!(c.deadline(), Some((t0 + 100 * MS, Timer::ClientHeader)));
}

/// A bodyless keep-alive exchange, start to end.
fn exchange(c: &mut Lifecycle) {
    let now = Instant::now();
    c.step(
        HeadDone {
            body: false,
            keep_alive: true,
        },
        now,
    );
    c.step(RESPOND, now);
    c.step(ResponseDone, now);
}

/// Each state's deadline, named by its timer, and what expiry does.
#[tokio::test(start_paused = true)]
async fn deadlines_and_expiry() {
    let t0 = Instant::now();
    let mut c = Lifecycle::new(t(), t0);
    assert_eq!(c.deadline(), Some((t0 + 100 * MS, Timer::ClientHeader)));
    // The first head's clock started at accept, not at its first byte.
    advance(60 * MS).await;
    c.step(HeadStarted, Instant::now());
    assert_eq!(c.deadline(), Some((t0 + 100 * MS, Timer::ClientHeader)));
    advance(40 * MS).await;
    assert_eq!(c.step(Expired, Instant::now()), Answer408);
    assert_eq!(c.next(), Next::Close);
    c.step(RESPOND, Instant::now());
    assert_eq!(
        c.deadline(),
        Some((Instant::now() + 300 * MS, Timer::ClientSend))
    );
    assert_eq!(c.step(ResponseDone, Instant::now()), L);
    // Lingering: 50 ms per read, 600 ms in all.
    let since = Instant::now();
    for _ in 0..20 {
        let (at, _) = c.deadline().unwrap();
        assert!(at <= since + 600 * MS);
        advance(40 * MS).await;
        c.step(Traffic, Instant::now());
    }
    assert_eq!(c.deadline(), Some((since + 600 * MS, Timer::Lingering)));
    assert_eq!(c.step(Expired, Instant::now()), Close);
    assert_eq!(c.deadline(), None);

    // Idle keep-alive: keepalive_timeout, then a quiet close.
    let mut c = Lifecycle::new(t(), Instant::now());
    c.step(Event::HeadStarted, Instant::now());
    c.step(
        HeadDone {
            body: false,
            keep_alive: true,
        },
        Instant::now(),
    );
    assert_eq!(
        c.deadline(),
        None,
        "waiting for the upstream: its read_timeout applies"
    );
    c.step(RESPOND, Instant::now());
    c.step(ResponseDone, Instant::now());
    assert_eq!(
        c.deadline(),
        Some((Instant::now() + 400 * MS, Timer::Keepalive))
    );
    assert_eq!(c.step(Expired, Instant::now()), Close);

    // A later head's clock starts at its first byte.
    let mut c = Lifecycle::new(t(), Instant::now());
    exchange(&mut c);
    advance(350 * MS).await;
    c.step(HeadStarted, Instant::now());
    assert_eq!(
        c.deadline(),
        Some((Instant::now() + 100 * MS, Timer::ClientHeader))
    );

    // A tunnel lives while bytes move, and dies of silence.
    c.step(
        HeadDone {
            body: false,
            keep_alive: true,
        },
        Instant::now(),
    );
    c.step(Upgraded, Instant::now());
    advance(400 * MS).await;
    c.step(Traffic, Instant::now());
    assert_eq!(
        c.deadline(),
        Some((Instant::now() + 500 * MS, Timer::Tunnel))
    );
    assert_eq!(c.step(Expired, Instant::now()), Close);
}

/// Body deadlines: a pause of client_body_timeout, or a trickle below the rate.
#[tokio::test(start_paused = true)]
async fn body_deadlines() {
    let mut c = Lifecycle::new(t(), Instant::now());
    c.step(
        HeadDone {
            body: true,
            keep_alive: true,
        },
        Instant::now(),
    );
    let start = Instant::now();
    assert_eq!(c.deadline(), Some((start + 200 * MS, Timer::ClientBody)));
    // 1 byte every 150 ms: never a 200 ms pause, but 1000 B/s is owed.
    for _ in 0..3 {
        advance(150 * MS).await;
        c.step(BodyBytes(1), Instant::now());
    }
    assert_eq!(
        c.deadline(),
        Some((start + 200 * MS + 3 * MS, Timer::ClientBodyRate))
    );
    assert_eq!(c.step(Expired, Instant::now()), Answer408);
    assert_eq!(c.step(RESPOND, Instant::now()), Continue);
    assert_eq!(
        c.step(ResponseDone, Instant::now()),
        L,
        "body unread: linger"
    );
}

/// HTTP/2: the preface is the head; idle means no open stream.
#[tokio::test(start_paused = true)]
async fn http2_transitions() {
    let t0 = Instant::now();
    let mut c = Lifecycle::h2(t(), t0);
    assert_eq!(c.deadline(), Some((t0 + 100 * MS, Timer::ClientHeader)));
    assert_eq!(c.clone().step(Expired, t0), Close, "no preface in time");
    advance(30 * MS).await;
    c.step(H2Ready, Instant::now());
    let ready = Instant::now();
    assert_eq!(c.deadline(), Some((ready + 400 * MS, Timer::Keepalive)));
    c.step(H2Streams { open: 2 }, Instant::now());
    assert_eq!(c.deadline(), None, "streams open: no connection deadline");
    advance(1000 * MS).await;
    c.step(H2Streams { open: 0 }, Instant::now());
    assert_eq!(
        c.deadline(),
        Some((Instant::now() + 400 * MS, Timer::Keepalive))
    );
    c.step(H2Streams { open: 1 }, Instant::now());
    assert_eq!(c.step(Drain, Instant::now()), GoAway);
    assert_eq!(kind(c.state()), "H2Draining");
    assert_eq!(c.step(H2Streams { open: 0 }, Instant::now()), Close);
    let mut idle = Lifecycle::h2(t(), Instant::now());
    idle.step(H2Ready, Instant::now());
    assert_eq!(idle.step(Expired, Instant::now()), Close);
    let mut idle = Lifecycle::h2(t(), Instant::now());
    idle.step(H2Ready, Instant::now());
    assert_eq!(idle.step(Drain, Instant::now()), Close);
}
