//! A client connection's lifecycle: `(state, event) -> (state, action)`,
//! pure. No sockets, no sleeps, no clock reads: the driver (`listen::h1`,
//! `listen::h2`) passes `now`, asks [`Lifecycle::deadline`] how long its
//! next wait may last, and feeds [`Event::Expired`] when that passes.
//!
//! Every state has one client-side deadline, named after its config key
//! (nginx's in brackets). See `LIFECYCLE.md` beside this file for the
//! diagram, the invariants and the tests that pin them.
//!
//! | state | deadline | on expiry |
//! |---|---|---|
//! | `Fresh` | `client_header_timeout` from accept | close quietly |
//! | `FreshDraining` | the same, at most `lingering_timeout` after the drain began | close quietly |
//! | `Head` | `client_header_timeout` from the head's first byte | 408, lingering close |
//! | `Body` | `client_body_timeout` idle, `client_body_min_rate` | 408, lingering close |
//! | `Upstream` | none here: the upstream side owns `read_timeout` (504) | |
//! | `Response` | `client_send_timeout` since the client last took bytes | close |
//! | `Idle` | `keepalive_timeout` | close quietly |
//! | `Tunnel` | `read_timeout` of silence both ways | close |
//! | `Linger` | `lingering_time` total, `lingering_timeout` per read | close |
//! | `H2Preface` | `client_header_timeout` (preface and first SETTINGS) | close |
//! | `H2 {open: 0}` | `keepalive_timeout` | GOAWAY, close |
//! | `H2 {open > 0}`, `H2Draining` | none here (streams time out on their own) | |
//!
//! Whatever is still open when `shutdown_grace` ends, tunnels included, is
//! closed by dropping its task (`listen::server`, nginx's
//! `worker_shutdown_timeout`, HAProxy's `hard-stop-after`); no state
//! outlives the grace period.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::body::{BodyLimits, BodyTimer, Pace};

/// Every client-side timeout, resolved from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// `client_header_timeout`: the whole head (HTTP/2: preface and SETTINGS).
    pub(crate) header: Duration,
    /// `client_body_timeout` and `client_body_min_rate`.
    pub(crate) body: BodyLimits,
    /// `client_send_timeout`: a client that takes no bytes for this long.
    pub(crate) send: Duration,
    /// `keepalive_timeout`: idle between requests.
    pub(crate) keepalive: Duration,
    /// `read_timeout`: a tunnel silent both ways for this long.
    pub(crate) tunnel: Duration,
    /// `lingering_time`: the most a lingering close reads and discards.
    pub(crate) linger: Duration,
    /// `lingering_timeout`: the longest wait for more data while lingering.
    pub(crate) linger_idle: Duration,
}

/// What is left of the request when its response is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rest {
    /// The whole request was read: the connection may be reused.
    Read,
    /// Part of the request (body, or all of a refused head) is unread: the
    /// connection ends with a lingering close, never with reuse.
    Unread,
}

/// Where a connection is; see the table in the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Fresh { since: Instant },
    FreshDraining { since: Instant, until: Instant },
    Head { since: Instant },
    Body(Pace),
    Upstream { since: Instant },
    Response { last: Instant, rest: Rest },
    Idle { since: Instant },
    Tunnel { last: Instant },
    Linger { since: Instant, last: Instant },
    H2Preface { since: Instant },
    H2 { open: u32, since: Instant },
    H2Draining { open: u32 },
    Closed,
}

/// What the connection does after the current exchange (a request in
/// flight keeps its state; this decides what follows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Serve another request (HTTP/1.1 default, HTTP/1.0 `keep-alive`).
    KeepAlive,
    /// Close: the client asked, or the server is draining.
    Close,
}

/// Something the driver saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The first bytes of a request head arrived.
    HeadStarted,
    /// A complete, accepted head; `body`: a body follows; `keep_alive`: the client allows reuse.
    HeadDone { body: bool, keep_alive: bool },
    /// `n` request-body bytes arrived.
    BodyBytes(u64),
    /// The request body ended.
    BodyDone,
    /// A response head is going out (ours or the upstream's); `close`: the
    /// response itself ends the connection (its body runs to the close).
    Respond { close: bool },
    /// The client accepted response bytes.
    Wrote,
    /// The response is complete.
    ResponseDone,
    /// 101 sent: the connection is a tunnel from now on.
    Upgraded,
    /// Bytes moved through a tunnel, or arrived while lingering.
    Traffic,
    /// HTTP/2: the preface and first SETTINGS arrived.
    H2Ready,
    /// HTTP/2: the number of open streams is now `open`.
    H2Streams { open: u32 },
    /// The server stops: finish what is in flight, then close.
    Drain,
    /// The deadline from [`Lifecycle::deadline`] has passed.
    Expired,
    /// The client closed or reset the connection.
    PeerGone,
}

/// What the driver must do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Carry on in the new state.
    Continue,
    /// Answer 408 with `Connection: close` (then `Respond`/`ResponseDone` as usual).
    Answer408,
    /// Shut the write side and start reading and discarding (lingering close).
    Linger,
    /// HTTP/2: send GOAWAY and let open streams finish.
    GoAway,
    /// Close the connection now.
    Close,
}

/// Which config key a deadline comes from, for logs and the close reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    ClientHeader,
    ClientBody,
    ClientBodyRate,
    ClientSend,
    Keepalive,
    Tunnel,
    Lingering,
    LingeringIdle,
}

impl Timer {
    /// Every timer, in [`Timer::index`] order.
    pub(crate) const ALL: [Timer; 8] = [
        Timer::ClientHeader,
        Timer::ClientBody,
        Timer::ClientBodyRate,
        Timer::ClientSend,
        Timer::Keepalive,
        Timer::Tunnel,
        Timer::Lingering,
        Timer::LingeringIdle,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The config key the timer comes from (the metric's `timer` label).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Timer::ClientHeader => "client_header_timeout",
            Timer::ClientBody => "client_body_timeout",
            Timer::ClientBodyRate => "client_body_min_rate",
            Timer::ClientSend => "client_send_timeout",
            Timer::Keepalive => "keepalive_timeout",
            Timer::Tunnel => "read_timeout",
            Timer::Lingering => "lingering_time",
            Timer::LingeringIdle => "lingering_timeout",
        }
    }
}

/// The connection's state, its fate after the current exchange, and its
/// timeouts (those of the config it was accepted under, shared: an idle
/// connection's whole lifecycle is a few dozen bytes).
#[derive(Clone, Debug)]
pub(crate) struct Lifecycle {
    state: State,
    next: Next,
    t: Arc<Timeouts>,
}

// === impl Lifecycle ===

impl Lifecycle {
    /// A connection accepted at `now`.
    pub(crate) fn new(t: Arc<Timeouts>, now: Instant) -> Lifecycle {
        Lifecycle {
            state: State::Fresh { since: now },
            next: Next::KeepAlive,
            t,
        }
    }

    /// A connection known to speak HTTP/2 from its first bytes (prior
    /// knowledge, or ALPN `h2`), its head clock running since `since`.
    pub(crate) fn h2(t: Arc<Timeouts>, since: Instant) -> Lifecycle {
        Lifecycle {
            state: State::H2Preface { since },
            next: Next::KeepAlive,
            t,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn next(&self) -> Next {
        self.next
    }

    pub(crate) fn timeouts(&self) -> &Arc<Timeouts> {
        &self.t
    }

    /// When the current state expires and why; `None`: no client-side deadline.
    pub(crate) fn deadline(&self) -> Option<(Instant, Timer)> {
        let t = &self.t;
        match self.state {
            State::Fresh { since } | State::Head { since } | State::H2Preface { since } => {
                Some((since + t.header, Timer::ClientHeader))
            }
            State::FreshDraining { since, until } => Some(if until < since + t.header {
                (until, Timer::LingeringIdle)
            } else {
                (since + t.header, Timer::ClientHeader)
            }),
            State::Body(p) => Some(match p.deadline(&t.body) {
                (at, BodyTimer::Idle) => (at, Timer::ClientBody),
                (at, BodyTimer::Rate) => (at, Timer::ClientBodyRate),
            }),
            State::Response { last, .. } => Some((last + t.send, Timer::ClientSend)),
            State::Idle { since } | State::H2 { open: 0, since } => {
                Some((since + t.keepalive, Timer::Keepalive))
            }
            State::Tunnel { last } => Some((last + t.tunnel, Timer::Tunnel)),
            State::Linger { since, last } => {
                let total = since + t.linger;
                let idle = last + t.linger_idle;
                Some(if total <= idle {
                    (total, Timer::Lingering)
                } else {
                    (idle, Timer::LingeringIdle)
                })
            }
            State::Upstream { .. }
            | State::H2 { .. }
            | State::H2Draining { .. }
            | State::Closed => None,
        }
    }

    /// Feeds one event at `now`. Events that cannot happen in a state leave it unchanged.
    pub(crate) fn step(&mut self, event: Event, now: Instant) -> Action {
        let (state, action) = self.transition(event, now);
        self.state = state;
        if action == Action::Close {
            self.state = State::Closed;
        }
        action
    }

    fn transition(&mut self, event: Event, now: Instant) -> (State, Action) {
        use Action::{Close, Continue};
        use State as S;
        let keep = (self.state, Continue);
        match (self.state, event) {
            (S::Closed, _) => (S::Closed, Close),
            (_, Event::PeerGone) => (S::Closed, Close),

            // --- HTTP/1 request -----------------------------------------
            (S::Fresh { .. } | S::FreshDraining { .. } | S::Idle { .. }, Event::HeadStarted) => {
                // nginx: client_header_timeout counts from accept for the first
                // request, and from the first byte of later ones.
                let since = match self.state {
                    S::Fresh { since } | S::FreshDraining { since, .. } => since,
                    _ => now,
                };
                (S::Head { since }, Continue)
            }
            (
                S::Fresh { .. } | S::FreshDraining { .. } | S::Idle { .. } | S::Head { .. },
                Event::HeadDone { body, keep_alive },
            ) => {
                if !keep_alive {
                    self.next = Next::Close;
                }
                let next = if body {
                    S::Body(Pace::start(now))
                } else {
                    S::Upstream { since: now }
                };
                (next, Continue)
            }
            (S::Body(p), Event::BodyBytes(n)) => (S::Body(p.add(n, now)), Continue),
            (S::Body(_), Event::BodyDone) => (S::Upstream { since: now }, Continue),

            // --- the response ---------------------------------------------
            // From Upstream the request was read to its end; from anywhere
            // before, it was not (an early answer, or a refusal), and the
            // connection must end with a lingering close, never be reused.
            (S::Upstream { .. }, Event::Respond { close }) => {
                if close {
                    self.next = Next::Close;
                }
                (
                    S::Response {
                        last: now,
                        rest: Rest::Read,
                    },
                    Continue,
                )
            }
            (
                S::Fresh { .. }
                | S::FreshDraining { .. }
                | S::Idle { .. }
                | S::Head { .. }
                | S::Body(_),
                Event::Respond { .. },
            ) => {
                self.next = Next::Close;
                (
                    S::Response {
                        last: now,
                        rest: Rest::Unread,
                    },
                    Continue,
                )
            }
            (S::Response { rest, .. }, Event::Wrote) => (S::Response { last: now, rest }, Continue),
            (S::Response { rest, .. }, Event::ResponseDone) => match (rest, self.next) {
                (Rest::Read, Next::KeepAlive) => (S::Idle { since: now }, Continue),
                (Rest::Read, Next::Close) => (S::Closed, Close),
                (Rest::Unread, _) => (
                    S::Linger {
                        since: now,
                        last: now,
                    },
                    Action::Linger,
                ),
            },
            (S::Upstream { .. } | S::Response { .. }, Event::Upgraded) => {
                (S::Tunnel { last: now }, Continue)
            }
            (S::Tunnel { .. }, Event::Traffic) => (S::Tunnel { last: now }, Continue),
            (S::Linger { since, .. }, Event::Traffic) => (S::Linger { since, last: now }, Continue),

            // --- HTTP/2 ------------------------------------------------------
            (S::H2Preface { .. }, Event::H2Ready) => (
                S::H2 {
                    open: 0,
                    since: now,
                },
                Continue,
            ),
            (S::H2 { open, since }, Event::H2Streams { open: n }) => {
                // The idle clock restarts when the last stream closes.
                let since = if n == 0 && open > 0 { now } else { since };
                (S::H2 { open: n, since }, Continue)
            }
            (S::H2Draining { .. }, Event::H2Streams { open: 0 }) => (S::Closed, Close),
            (S::H2Draining { .. }, Event::H2Streams { open }) => (S::H2Draining { open }, Continue),

            // --- draining ------------------------------------------------------
            // Between requests a connection closes at once (nginx closes its
            // idle keep-alive connections; a client retries on a new one).
            // One that has not sent its first request is not idle: that
            // request may be on the way, and a request lost on a new
            // connection is an error to its client, not a retry. It is
            // served if it comes within `lingering_timeout` (nginx waits
            // the whole `client_header_timeout`; a preconnect that never
            // speaks should not hold the drain that long).
            (S::Fresh { since }, Event::Drain) => {
                self.next = Next::Close;
                let until = now + self.t.linger_idle;
                (S::FreshDraining { since, until }, Continue)
            }
            // HTTP/2 before its preface: hyper sends GOAWAY once the
            // handshake is done (`h2::GOAWAY_WAIT`).
            (S::Idle { .. } | S::H2Preface { .. } | S::H2 { open: 0, .. }, Event::Drain) => {
                (S::Closed, Close)
            }
            (S::H2 { open, .. }, Event::Drain) => (S::H2Draining { open }, Action::GoAway),
            // A request in flight finishes and its response says Connection:
            // close. Tunnels and lingering closes run on until their own
            // deadline or the end of the grace period.
            (_, Event::Drain) => {
                self.next = Next::Close;
                keep
            }

            // --- deadlines -------------------------------------------------------
            (S::Head { .. } | S::Body(_), Event::Expired) => {
                // nginx answers a slow head or body with 408 and closes.
                self.next = Next::Close;
                (self.state, Action::Answer408)
            }
            (
                S::Fresh { .. }
                | S::FreshDraining { .. }
                | S::H2 { open: 0, .. }
                | S::Idle { .. }
                | S::Response { .. }
                | S::Tunnel { .. }
                | S::Linger { .. }
                | S::H2Preface { .. },
                Event::Expired,
            ) => (S::Closed, Close),

            _ => keep,
        }
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
