//! New connections spread evenly over the workers.
//!
//! Each worker accepts on its own `SO_REUSEPORT` socket, and the kernel
//! picks the socket by a hash of the client's address and port: 64
//! connections split 37/28 about as often as 32/32, and then the 37 wait
//! longer for their worker than the 28 for theirs. The tail latency of the
//! whole is the busier worker's. HAProxy hands each new connection to its
//! least loaded thread; nginx's workers take turns in `epoll_wait`, where
//! `EPOLLEXCLUSIVE` wakes one that is idle. Here a worker that accepts a
//! connection while it serves at least two more than the least loaded
//! worker passes the socket on to that one ([`pick`]): once per
//! connection, never per request, so keep-alive traffic pays nothing.
//!
//! A worker's load is its connections with a task ([`Observed::active`]:
//! one parked in the lot costs no CPU until it wakes) plus those passed to
//! it that it has not taken in yet, so a burst of accepts on one worker
//! does not pass them all to the same one.
//!
//! Passing costs a few microseconds (the socket leaves one epoll for
//! another, and the other worker wakes), so each accept loop has a
//! [`Budget`]: a burst of [`BURST`], then [`PER_SECOND`]. Keep-alive
//! clients need few passes, when they connect; clients that open a
//! connection per request keep both workers' counts moving, and a pass
//! there evens nothing for long: at 64 such clients 40 % of the
//! connections were passed, for 5 % more CPU per request, before the budget.
//!
//! The inboxes are bounded ([`INBOX`]); a full or closed one keeps the
//! connection where it was accepted. A passed connection carries its
//! `max_connections` slot, and is served even when the worker is
//! stopping: it was accepted, and closing it would reset the client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stackd_common::CancellationToken;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::conn;
use super::lot::Lot;
use super::{Ctx, Observed};

/// Connections waiting for a worker to take them in, per worker and
/// listen address, at most.
const INBOX: usize = 256;

/// Passes an accept loop may make at once (1,000 keep-alive clients
/// connecting together took about 240).
const BURST: u32 = 256;

/// Passes an accept loop earns per second after its burst.
const PER_SECOND: u64 = 64;

/// An accept loop's passes left ([`BURST`], refilled at [`PER_SECOND`]).
#[derive(Debug)]
pub(crate) struct Budget {
    left: u32,
    /// When the last pass was earned.
    earned: Instant,
}

/// A connection on its way to another worker, with its slot.
pub(crate) struct Passed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
}

/// One accept loop's way to pass what it accepts.
pub(crate) struct Outbox {
    spread: Arc<Spread>,
    /// The worker that accepts.
    me: usize,
    /// The listen address, by its index in the config.
    address: usize,
    budget: Budget,
}

/// What every worker shares to pass connections to the others.
pub(crate) struct Spread {
    observed: Arc<Observed>,
    workers: Box<[Share]>,
}

/// One worker, as the others see it.
struct Share {
    /// Connections passed to it and not yet taken in.
    incoming: AtomicUsize,
    /// By listen address, in the config's order.
    inboxes: Box<[mpsc::Sender<Passed>]>,
}

/// The worker to pass a new connection to, if any: the least loaded one,
/// when `me` serves at least two more (one more would only swap the two).
pub(crate) fn pick(loads: &[usize], me: usize) -> Option<usize> {
    let mine = *loads.get(me)?;
    let (least, load) = loads
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != me)
        .min_by_key(|&(_, l)| *l)?;
    (mine >= load + 2).then_some(least)
}

// === impl Budget ===

impl Budget {
    pub(crate) fn new(now: Instant) -> Budget {
        Budget {
            left: BURST,
            earned: now,
        }
    }

    /// Takes one pass, if one is left at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        const MICROS: u64 = 1_000_000;
        let since = now.saturating_duration_since(self.earned).as_micros();
        let earned = u64::try_from(since)
            .unwrap_or(u64::MAX)
            .saturating_mul(PER_SECOND)
            / MICROS;
        if earned > 0 {
            let left = u64::from(self.left).saturating_add(earned);
            if left >= u64::from(BURST) {
                (self.left, self.earned) = (BURST, now);
            } else {
                // Only the time the passes took: the rest counts toward the next.
                self.left = left as u32;
                self.earned += Duration::from_micros(earned * MICROS / PER_SECOND);
            }
        }
        let Some(left) = self.left.checked_sub(1) else {
            return false;
        };
        self.left = left;
        true
    }
}

// === impl Spread ===

impl Spread {
    /// A spread over `workers` workers with `addresses` listen addresses
    /// each; the inboxes to serve, by worker then address.
    pub(crate) fn new(
        observed: Arc<Observed>,
        workers: usize,
        addresses: usize,
    ) -> (Arc<Spread>, Vec<Vec<mpsc::Receiver<Passed>>>) {
        let mut receivers = Vec::with_capacity(workers);
        let workers = (0..workers)
            .map(|_| {
                let (tx, rx): (Vec<_>, Vec<_>) =
                    (0..addresses).map(|_| mpsc::channel(INBOX)).unzip();
                receivers.push(rx);
                Share {
                    incoming: AtomicUsize::new(0),
                    inboxes: tx.into(),
                }
            })
            .collect();
        let spread = Spread { observed, workers };
        (Arc::new(spread), receivers)
    }

    /// Each worker's load, in worker order.
    fn loads(&self) -> Vec<usize> {
        let active = self.observed.active.all();
        (active.zip(self.workers.iter()))
            .map(|(a, w)| a.load(Ordering::Relaxed) + w.incoming.load(Ordering::Relaxed))
            .collect()
    }

    /// Worker `me` takes a passed connection in: it counts as active there
    /// from now on.
    fn taken(&self, me: usize) {
        if let Some(w) = self.workers.get(me) {
            w.incoming.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

// === impl Outbox ===

impl Outbox {
    /// Worker `me`'s outbox for listen address `address`.
    pub(crate) fn new(spread: Arc<Spread>, me: usize, address: usize) -> Outbox {
        Outbox {
            spread,
            me,
            address,
            budget: Budget::new(crate::clock::now()),
        }
    }

    /// Serves a connection just accepted here (it comes back), or passes
    /// it to a less loaded worker (`None`).
    pub(crate) fn route(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> Option<(TcpStream, OwnedSemaphorePermit)> {
        let workers = &self.spread.workers;
        let Some(to) = pick(&self.spread.loads(), self.me) else {
            return Some((stream, permit));
        };
        if !self.budget.take(crate::clock::now()) {
            return Some((stream, permit));
        }
        let (w, inbox) = match workers.get(to).map(|w| (w, w.inboxes.get(self.address))) {
            Some((w, Some(inbox))) => (w, inbox),
            _ => return Some((stream, permit)),
        };
        // Leaves this worker's epoll; the other registers it with its own.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, %peer, "cannot pass a new connection on; closed");
                return None;
            }
        };
        w.incoming.fetch_add(1, Ordering::Relaxed);
        let kept = match inbox.try_send(Passed {
            stream,
            peer,
            permit,
        }) {
            Ok(()) => {
                tracing::debug!(from = self.me, to, %peer, "new connection passed to a less loaded worker");
                return None;
            }
            Err(TrySendError::Full(p) | TrySendError::Closed(p)) => p,
        };
        w.incoming.fetch_sub(1, Ordering::Relaxed);
        match TcpStream::from_std(kept.stream) {
            Ok(s) => Some((s, kept.permit)),
            Err(e) => {
                tracing::warn!(error = %e, %peer, "cannot take back a new connection; closed");
                None
            }
        }
    }
}

/// Serves the connections passed to worker `me` on one listen address
/// until `stop`, then the ones already in its inbox.
pub(crate) async fn adopt_loop(
    spread: Arc<Spread>,
    me: usize,
    mut inbox: mpsc::Receiver<Passed>,
    tls: bool,
    ctx: Arc<Ctx>,
    stop: CancellationToken,
) {
    let lot = Lot::for_listener(tls, &ctx, &stop);
    let adopt = |p: Passed| {
        match TcpStream::from_std(p.stream) {
            Ok(stream) => {
                let task = conn::accepted(stream, p.peer, tls, ctx.clone(), p.permit, lot.clone());
                ctx.tracker.spawn(task);
            }
            Err(e) => {
                tracing::warn!(error = %e, peer = %p.peer, "cannot take in a passed connection; closed")
            }
        }
        spread.taken(me);
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            p = inbox.recv() => match p {
                Some(p) => adopt(p),
                None => return,
            },
        }
    }
    inbox.close();
    while let Ok(p) = inbox.try_recv() {
        adopt(p);
    }
}

#[cfg(test)]
mod tests {
    use super::{pick, Budget, Duration, Instant, BURST, PER_SECOND};

    #[test]
    fn the_budget_allows_a_burst_then_a_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0);
        assert_eq!(
            (0..BURST + 10).filter(|_| b.take(t0)).count(),
            BURST as usize
        );
        // A second earns PER_SECOND, whatever the calls between were.
        let mut taken = 0;
        for ms in 1..=1000 {
            let now = t0 + Duration::from_millis(ms);
            while b.take(now) {
                taken += 1;
            }
        }
        assert_eq!(taken, PER_SECOND);
        // A long quiet spell earns a burst, not more.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            (0..BURST + 10).filter(|_| b.take(later)).count(),
            BURST as usize
        );
    }

    #[test]
    fn passes_only_when_it_evens_the_load() {
        // (loads, me, expected)
        let table: &[(&[usize], usize, Option<usize>)] = &[
            (&[0, 0], 0, None),
            (&[1, 0], 0, None), // passing would only swap them
            (&[2, 0], 0, Some(1)),
            (&[37, 28], 0, Some(1)),
            (&[28, 37], 0, None),
            (&[28, 37], 1, Some(0)),
            (&[5, 9, 3, 4], 1, Some(2)), // the least loaded, not the next
            (&[5, 9, 3, 3], 1, Some(2)), // ties: the first
            (&[4, 5, 5, 5], 0, None),
            (&[7], 0, None),    // one worker: nowhere to pass
            (&[1, 2], 5, None), // not a worker: keep it
        ];
        for &(loads, me, want) in table {
            assert_eq!(pick(loads, me), want, "loads {loads:?}, worker {me}");
        }
    }
}
