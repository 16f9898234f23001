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

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNT: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    static ID: Cell<usize> = const { Cell::new(0) };
}

/// Number of per-worker shards to allocate (at least 1). Set once before the
/// first snapshot is built.
pub(crate) fn count() -> usize {
    COUNT.load(Ordering::Relaxed).max(1)
}

pub(crate) fn set_count(n: usize) {
    COUNT.store(n.max(1), Ordering::Relaxed);
}

/// This thread's worker index (0 outside worker threads).
pub(crate) fn id() -> usize {
    ID.with(Cell::get)
}

pub(crate) fn set_id(i: usize) {
    ID.with(|c| c.set(i));
}

/// A value on a cache line of its own (128 bytes: two lines, as adjacent-line
/// prefetch pairs them on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One `T` per worker, each on its own cache line.
#[derive(Debug)]
pub(crate) struct PerWorker<T>(Box<[Padded<T>]>);

impl<T: Default> Default for PerWorker<T> {
    fn default() -> PerWorker<T> {
        PerWorker((0..count()).map(|_| Padded::default()).collect())
    }
}

// === impl PerWorker ===

impl<T> PerWorker<T> {
    /// This worker's copy.
    pub(crate) fn mine(&self) -> &T {
        // `count()` is set before anything builds a PerWorker, and ids are
        // below it; a stray thread gets worker 0's copy. (A comparison, not
        // a modulo: a division on every counter a request bumps.)
        match self.0.get(id()) {
            Some(p) => &p.0,
            None => &self.0[0].0,
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
}
