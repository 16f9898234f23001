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
}
