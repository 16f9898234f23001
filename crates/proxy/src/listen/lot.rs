//! The lot: idle plain connections without a task of their own.
//!
//! A connection waiting in its task costs the task (640 bytes, aligned to
//! 128), tokio's registration of its socket (256 bytes, aligned to 128)
//! and the allocator's slack around both: about 1.5 KiB, 15 MB for 10,000
//! idle keep-alive clients. nginx keeps an idle connection in a struct of
//! a few hundred bytes; the lot is that struct. A connection that stays
//! idle for [`HOT`] leaves its task: its socket moves from tokio's epoll to
//! the lot's own, and what is left of it is one map entry (socket,
//! lifecycle, peer, `max_connections` slot).
//!
//! What ends a stay: bytes or the client's close (the socket is readable)
//! go back to a new connection task, which peeks and reads or closes; the
//! lifecycle's deadline closes it here, counted as the timeout it is; the
//! drain, or the listener going away, closes every parked connection (as
//! nginx closes its idle keep-alive connections on reload).
//!
//! The move costs a few system calls each way, so it waits for [`HOT`]: a
//! client that sends its next request sooner (every benchmark, every busy
//! keep-alive client) never leaves its task; one that idles longer sends
//! at most a few requests a second on that connection, and pays a few
//! microseconds on each.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll as Epoll, Registry, Token};
use stackd_common::CancellationToken;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::time::{delay_queue, DelayQueue};

use super::conn;
use super::lifecycle::{Event, Lifecycle, Timer};
use super::{idle_delay, Ctx, Observed};

/// How long a connection idles in its task before it moves to the lot
/// (see [`idle_delay`] for the benchmark builds).
pub(crate) const HOT: Duration = idle_delay(Duration::from_millis(250));

/// Readiness events taken from the lot's epoll per system call.
const EVENTS: usize = 256;

/// The idle connections of one accept loop (one worker's listener).
pub(crate) struct Lot {
    registry: Registry,
    observed: Arc<Observed>,
    inner: Mutex<Inner>,
}

struct Inner {
    /// By the id that is also their epoll token.
    parked: HashMap<u64, Parked>,
    /// Their deadlines, by id (it wakes the lot's task when a new one is
    /// the earliest).
    deadlines: DelayQueue<u64>,
    next_id: u64,
    /// The lot has stopped: whatever parks now is closed.
    closed: bool,
}

/// What is left of a connection while it idles in the lot.
struct Parked {
    socket: std::net::TcpStream,
    life: Lifecycle,
    /// The timer whose deadline this is (`keepalive_timeout`, or
    /// `client_header_timeout` for a connection that has sent nothing).
    timer: Timer,
    deadline: delay_queue::Key,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
}

// === impl Lot ===

impl Lot {
    /// A lot for the accept loop that `stop` ends, its task spawned in
    /// `ctx`'s tracker on the current runtime.
    pub(crate) fn start(ctx: &Arc<Ctx>, stop: CancellationToken) -> io::Result<Arc<Lot>> {
        let epoll = Epoll::new()?;
        let lot = Arc::new(Lot {
            registry: epoll.registry().try_clone()?,
            observed: ctx.observed.clone(),
            inner: Mutex::new(Inner {
                parked: HashMap::new(),
                deadlines: DelayQueue::new(),
                next_id: 0,
                closed: false,
            }),
        });
        // SAFETY: the `Poll` owns its epoll descriptor and `AsyncFd` owns the
        // `Poll` until the task ends; nothing else closes or replaces it.
        let epoll =
            unsafe { AsyncFd::register_with_interest(epoll, tokio::io::Interest::READABLE) }
                .map_err(io::Error::from)?;
        ctx.tracker
            .spawn(run(lot.clone(), epoll, ctx.clone(), stop));
        Ok(lot)
    }

    /// Takes an idle connection out of its task; closes it if the lot has
    /// stopped or cannot watch it.
    pub(crate) fn park(
        &self,
        stream: TcpStream,
        life: Lifecycle,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) {
        let Some((at, timer)) = life.deadline() else {
            return;
        };
        let Ok(socket) = stream.into_std() else {
            return;
        };
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        let id = inner.next_id;
        let fd = socket.as_raw_fd();
        if let Err(e) =
            self.registry
                .register(&mut SourceFd(&fd), Token(id as usize), Interest::READABLE)
        {
            tracing::debug!(%peer, error = %e, "could not park an idle connection; closed");
            return;
        }
        inner.next_id += 1;
        let deadline = inner.deadlines.insert_at(id, at);
        let parked = Parked {
            socket,
            life,
            timer,
            deadline,
            peer,
            permit,
        };
        inner.parked.insert(id, parked);
        self.observed.parked.fetch_add(1, Ordering::Relaxed);
    }

    /// `p` leaves the lot: its socket leaves the lot's epoll.
    fn unpark(&self, p: &Parked) {
        let _ = self
            .registry
            .deregister(&mut SourceFd(&p.socket.as_raw_fd()));
        self.observed.parked.fetch_sub(1, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing under this lock can panic half-way through a change.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the connection `id` (readable: bytes, or the client's close)
    /// back to a connection task.
    fn resume(&self, id: u64, ctx: &Arc<Ctx>, lot: &Arc<Lot>) {
        let p = {
            let mut inner = self.lock();
            let Some(p) = inner.parked.remove(&id) else {
                return;
            };
            inner.deadlines.try_remove(&p.deadline);
            p
        };
        self.unpark(&p);
        match TcpStream::from_std(p.socket) {
            Ok(stream) => {
                let task = conn::connection(
                    stream,
                    p.peer,
                    false,
                    ctx.clone(),
                    p.permit,
                    p.life,
                    Some(lot.clone()),
                );
                ctx.tracker.spawn(task);
            }
            Err(e) => {
                tracing::debug!(peer = %p.peer, error = %e, "could not resume an idle connection; closed")
            }
        }
    }

    /// Closes the connections whose deadline has passed, counted under
    /// their timers; pending until there is one.
    fn expire(&self, cx: &mut std::task::Context<'_>, ctx: &Ctx) -> Poll<()> {
        let mut inner = self.lock();
        let mut closed = 0;
        while let Poll::Ready(Some(e)) = inner.deadlines.poll_expired(cx) {
            if let Some(mut p) = inner.parked.remove(e.get_ref()) {
                self.unpark(&p);
                ctx.count_timeout(p.timer);
                p.life.step(Event::Expired, Instant::now());
                closed += 1;
            }
        }
        if closed > 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Stops the lot: every parked connection closes, later ones too. Fresh
    /// ones among them too, unlike fresh ones in their tasks: silent for
    /// [`HOT`], they have no first request on the way.
    fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        let now = Instant::now();
        for (_, mut p) in inner.parked.drain() {
            self.unpark(&p);
            p.life.step(Event::Drain, now);
        }
        inner.deadlines.clear();
    }
}

/// The lot's task: readiness, deadlines, and the end. Deadlines come
/// before readiness (`biased`), so a stream of wake-ups cannot hold
/// expired connections past their deadline.
async fn run(lot: Arc<Lot>, mut epoll: AsyncFd<Epoll>, ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut events = Events::with_capacity(EVENTS);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = ctx.drain.cancelled() => break,
            () = std::future::poll_fn(|cx| lot.expire(cx, &ctx)) => {}
            ready = epoll.readable_mut() => {
                let Ok(mut guard) = ready else { break };
                match guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                    Ok(()) if events.is_empty() => guard.clear_ready(),
                    Ok(()) => {
                        for ev in events.iter() {
                            lot.resume(ev.token().0 as u64, &ctx, &lot);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "idle connections: epoll failed; closing them");
                        break;
                    }
                }
            }
        }
    }
    lot.close();
}
