//! Which worker thread we are on, and state kept per worker.
//!
//! With `workers = N` (the default: one per CPU) each worker is a thread
//! with its own single-threaded runtime, its own `SO_REUSEPORT` listener and
//! its own share of every server's idle connections (nginx's worker model):
//! a request never wakes a task on another thread. Without workers
//! everything is worker 0.
//!
//! [`PerWorker`] gives each worker its own copy of a value on its own cache
//! line: counters a request bumps, idle-connection lists, balancer cursors.
//! A request then writes only memory its own core owns; readers (the
//! admin pages, `least_conn`) sum over the workers. A counter shared by
//! all workers would bounce its cache line between cores on every request.
//! Threads that are not workers (all of them without workers) share one
//! more copy.
//!
//! A worker is the only writer of its copy, so it adds to a counter there
//! with a plain load and store ([`PerWorker::add`]): an atomic add is a
//! read-modify-write, several times the cost of a plain one here
//! (`bench/atomic-cost.sh`), and a request made seven of them on its
//! counters. Threads sharing the extra copy add atomically.
//!
//! Each turn of a worker's event loop ends in [`turn_ends`], which reads
//! the thread's CPU clock: see there for why that matters beyond the figure.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

static COUNT: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// This thread's worker index; `None` on threads that are not workers.
    static ID: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Number of per-worker shards to allocate (at least 1). Set once before the
/// first snapshot is built.
pub(crate) fn count() -> usize {
    COUNT.load(Ordering::Relaxed).max(1)
}

pub(crate) fn set_count(n: usize) {
    COUNT.store(n.max(1), Ordering::Relaxed);
}

/// Makes this thread worker `i`, the only writer of its copies. Called
/// once, by the worker's own thread, with an index no other thread has.
pub(crate) fn set_id(i: usize) {
    ID.with(|c| c.set(Some(i)));
}

/// A value on a cache line of its own (128 bytes: two lines, as adjacent-line
/// prefetch pairs them on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One `T` per worker, and one shared by the threads that are not workers
/// (the last), each on its own cache line.
#[derive(Debug)]
pub(crate) struct PerWorker<T>(Box<[Padded<T>]>);

impl<T: Default> Default for PerWorker<T> {
    fn default() -> PerWorker<T> {
        PerWorker((0..=count()).map(|_| Padded::default()).collect())
    }
}

/// A counter in a [`PerWorker`] copy.
pub(crate) trait Counter {
    type N;
    /// By the copy's only writer: a plain load and store.
    fn add_alone(&self, n: Self::N);
    /// By one of the threads sharing the copy.
    fn add_shared(&self, n: Self::N);
}

macro_rules! counter {
    ($($atomic:ty: $n:ty),*) => {$(
        impl Counter for $atomic {
            type N = $n;
            fn add_alone(&self, n: $n) {
                self.store(self.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
            fn add_shared(&self, n: $n) {
                self.fetch_add(n, Ordering::Relaxed);
            }
        }
    )*};
}

counter!(AtomicU64: u64, AtomicI64: i64);

/// Ends a turn of this worker's event loop: its run queue is empty and it
/// is about to poll for events (the runtime's `on_thread_park`). Records
/// the thread's CPU time in `cpu_ns` (`/metrics`).
///
/// Reading the clock is also what lets two busy workers share one core
/// finely. Linux's scheduler since 6.6 (EEVDF) ends a thread's slice
/// (1.4 ms on two CPUs) only when it brings the thread's accounting up to
/// date: at its tick (4 ms with `HZ=250`), when something wakes on that
/// core, or when the thread's CPU clock is read. When the load balancer
/// put both workers on one core (the load generator and the backend on
/// the other; a tenth of the time at 64 connections in `bench/proxy.sh`),
/// they took turns of a whole tick and every connection of the waiting
/// worker waited 4 ms: p99 3.7–4.5 ms against 1.8–2.1 with this read,
/// whose turns end at the slice (`perf sched timehist`). HAProxy reads
/// the same clock around each poll (for its idle and stolen time), which
/// is why its threads share a core well.
///
/// Through glibc, not rustix: rustix first parses the vDSO's ELF image
/// itself, which faults under valgrind (`bench/instructions.sh`), and the
/// vDSO has no CPU clocks anyway.
pub(crate) fn turn_ends(cpu_ns: &PerWorker<AtomicU64>) {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration.
    // The thread's own CPU clock always exists; on an error `t` stays 0.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    let ns = u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0));
    cpu_ns.mine().store(ns, Ordering::Relaxed);
}

// === impl PerWorker ===

impl<T> PerWorker<T> {
    /// This thread's copy, and whether this thread is its only writer.
    fn slot(&self) -> (&T, bool) {
        // `count()` is set before anything builds a PerWorker, and worker
        // ids are below it. (A comparison, not a modulo: a division on
        // every counter a request bumps.)
        let shared = self.0.len() - 1;
        match ID.with(Cell::get) {
            Some(i) if i < shared => (&self.0[i].0, true),
            _ => (&self.0[shared].0, false),
        }
    }

    /// This thread's copy: its worker's, or the one threads that are not
    /// workers share.
    pub(crate) fn mine(&self) -> &T {
        self.slot().0
    }

    /// Adds `n` to `counter` of this thread's copy.
    pub(crate) fn add<C: Counter>(&self, counter: impl FnOnce(&T) -> &C, n: C::N) {
        match self.slot() {
            (mine, true) => counter(mine).add_alone(n),
            (shared, false) => counter(shared).add_shared(n),
        }
    }

    /// Every worker's copy, to sum or sweep.
    pub(crate) fn all(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|p| &p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_has_its_own_line() {
        let p: PerWorker<AtomicUsize> = PerWorker((0..2).map(|_| Padded::default()).collect());
        let a = &p.0[0].0 as *const _ as usize;
        let b = &p.0[1].0 as *const _ as usize;
        assert!(b - a >= 128);
        p.mine().fetch_add(1, Ordering::Relaxed);
        assert_eq!(p.all().map(|c| c.load(Ordering::Relaxed)).sum::<usize>(), 1);
    }

    #[test]
    fn workers_add_alone_and_other_threads_share_a_copy() {
        const N: u64 = 200_000;
        // Two workers and the shared copy.
        let p: PerWorker<AtomicU64> = PerWorker((0..3).map(|_| Padded::default()).collect());
        std::thread::scope(|s| {
            for w in 0..2 {
                let p = &p;
                s.spawn(move || {
                    set_id(w);
                    (0..N).for_each(|_| p.add(|c| c, 1));
                });
            }
            for _ in 0..4 {
                s.spawn(|| (0..N).for_each(|_| p.add(|c| c, 1)));
            }
        });
        let counts: Vec<u64> = p.all().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, vec![N, N, 4 * N], "no add lost");
    }

    #[test]
    fn a_turn_records_the_workers_cpu_time() {
        let cpu: PerWorker<AtomicU64> = PerWorker((0..3).map(|_| Padded::default()).collect());
        let read = |cpu: &PerWorker<AtomicU64>| -> Vec<u64> {
            cpu.all().map(|c| c.load(Ordering::Relaxed)).collect()
        };
        let (first, second) = std::thread::scope(|s| {
            s.spawn(|| {
                set_id(1);
                turn_ends(&cpu);
                let first = read(&cpu);
                (0..1_000_000u64).for_each(|i| {
                    std::hint::black_box(i);
                });
                turn_ends(&cpu);
                (first, read(&cpu))
            })
            .join()
            .unwrap()
        });
        assert_eq!(
            (first[0], first[2]),
            (0, 0),
            "only worker 1's copy: {first:?}"
        );
        assert!(first[1] > 0, "{first:?}");
        assert!(
            second[1] > first[1],
            "work between turns adds CPU time: {first:?} {second:?}"
        );
    }
}
