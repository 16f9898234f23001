//! Which worker thread we are on, so per-worker state (idle upstream
//! connections) stays with the thread whose runtime drives it.
//!
//! With `workers = N` each worker is a thread with its own single-threaded
//! runtime, its own `SO_REUSEPORT` listener and its own share of every
//! server's idle connections (nginx's worker model): a request never wakes a
//! task on another thread. Without workers everything is worker 0.

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
