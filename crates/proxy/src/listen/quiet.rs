//! [`Quiet`]: a future that is polled only when it woke its task.
//!
//! `tokio::select!` polls every branch each time the task wakes. A
//! connection task wakes for every read and write, and polling a
//! `CancellationToken::cancelled()` takes the token's mutex, shared by all
//! connections of all workers: one lock per wakeup, bouncing between
//! cores. Wrapped in `Quiet`, the token's future is polled once to
//! register, then again only when the token itself wakes the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// Whether the inner future woke us, and whom to wake.
#[derive(Debug, Default)]
struct Flag {
    hit: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.hit.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// See the module docs.
pub(crate) struct Quiet<F> {
    inner: Pin<Box<F>>,
    flag: Arc<Flag>,
    first: bool,
    /// The waker last given to `flag` (a task's waker stays the same, so
    /// registering again at every wakeup would be two atomic swaps for
    /// nothing).
    registered: Option<Waker>,
}

impl<F: Future> Quiet<F> {
    pub(crate) fn new(inner: F) -> Quiet<F> {
        Quiet {
            inner: Box::pin(inner),
            flag: Arc::default(),
            first: true,
            registered: None,
        }
    }
}

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            this.flag.task.register(cx.waker());
            this.registered = Some(cx.waker().clone());
        }
        // Registered before the flag is read: a wake after the read wakes
        // the task again. Read before it is cleared: most wakeups are not ours.
        if !this.first && !this.flag.hit.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        this.first = false;
        this.flag.hit.store(false, Ordering::Release);
        let waker = Waker::from(this.flag.clone());
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    /// Cancels `token` 50 ms from now and checks that `q` ends then. Bounded
    /// at a second: a lost wake shows as a late end, since the timeout
    /// polls `q` when it fires.
    async fn ends_at_the_cancel<F: Future + Unpin>(q: F, token: &CancellationToken) {
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            t.cancel();
        });
        let start = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(1), q)
            .await
            .expect("ended within the second");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(50),
            "woken by the cancel"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wakes_on_cancel_and_not_before() {
        let token = CancellationToken::new();
        let mut q = Box::pin(Quiet::new(token.clone().cancelled_owned()));
        let early = tokio::time::timeout(Duration::from_millis(10), &mut q).await;
        assert!(early.is_err(), "ready before the cancel");
        ends_at_the_cancel(q, &token).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_waker_replaces_the_registered_one() {
        let token = CancellationToken::new();
        let mut q = Box::pin(Quiet::new(token.clone().cancelled_owned()));
        let first = Context::from_waker(Waker::noop());
        assert!(q.as_mut().poll(&mut { first }).is_pending());
        // Now awaited by this task: the cancel must wake it, not the first waker.
        ends_at_the_cancel(q, &token).await;
    }
}
