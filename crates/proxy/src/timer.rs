//! Timers kept across the waits of a connection.
//!
//! A `tokio::time::timeout` per wait looks up the runtime's handle, files a
//! timer in the wheel under the driver's lock when the wait pends, and
//! takes the lock again to remove it when the wait ends: about 3 % of the
//! proxy's CPU samples at two such waits per request (the client's next
//! head, the upstream's answer). A kept timer is made once per connection
//! and serves each of its waits instead.
//!
//! It is filed lazily, as nginx's timers are. A wait leaves the timer
//! where it is while it is filed no later than the wait's deadline and at
//! least halfway there; when the filed instant comes, it wakes the task,
//! and the wait files it for its own deadline. Moving a tokio timer and
//! polling it again cost about six atomic read-modify-writes a wait (the
//! move, the waker's registration, a waker cloned and dropped), 12 of the
//! 71 a proxied request executed (`bench/instructions.sh --locked`); each
//! costs several times a plain instruction, more when a thousand
//! connections have pushed the timer's entry out of the cache.
//!
//! Halfway, not any earlier instant: an idle connection's first wait is
//! 25 ms long (`PARK_AFTER`), and a timer
//! kept from the last request's wait, which comes due during this request,
//! would wake the task for nothing once a request. Filed again when
//! it is less than halfway, the timer comes due during a wait only if that
//! wait lasts more than half its length; a connection serving requests
//! faster than that files its timer every few requests, not every one.
//! Moving it earlier files it again, so each kind of wait whose deadlines
//! only grow (now plus a fixed timeout) keeps a timer of its own.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use tokio::time::{Instant, Sleep};

pin_project_lite::pin_project! {
    /// A connection's timer: tokio's, and the waker it was last polled with.
    #[derive(Debug)]
    pub(crate) struct Kept {
        #[pin]
        sleep: Sleep,
        waker: Option<Waker>,
    }
}

/// A timer to keep: filed only when a wait first needs it.
pub(crate) fn kept() -> Kept {
    Kept {
        sleep: tokio::time::sleep_until(crate::clock::now()),
        waker: None,
    }
}

// === impl Kept ===

impl Kept {
    /// Ready once `at` has passed; until then, sure to wake the task by
    /// `at`, or sooner (then the next poll files it for `at`).
    fn poll_until(self: Pin<&mut Self>, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let filed = this.sleep.deadline();
        let fired = this.sleep.is_elapsed();
        let ours = this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if fired && filed >= at {
            return Poll::Ready(());
        }
        let now = crate::clock::now();
        let halfway = now + at.saturating_duration_since(now) / 2;
        if !fired && ours && (halfway..=at).contains(&filed) {
            // It wakes this task by `at`, and not long before.
            return Poll::Pending;
        }
        if filed != at || fired {
            this.sleep.as_mut().reset(at);
        }
        if !ours {
            *this.waker = Some(cx.waker().clone());
        }
        this.sleep.poll(cx)
    }
}

/// `f`, unless `at` comes first (`None`), on the kept `timer`. The timer
/// is looked at only once `f` has pended (most reads of a busy proxy are
/// ready at once).
pub(crate) async fn until<F: Future>(
    mut timer: Pin<&mut Kept>,
    at: Instant,
    f: F,
) -> Option<F::Output> {
    let mut f = pin!(f);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll_until(at, cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_timer_serves_many_waits_and_still_fires() {
        let mut timer = pin!(kept());
        let step = Duration::from_secs(1);
        for i in 1..=3u8 {
            let at = Instant::now() + step;
            let ready = until(timer.as_mut(), at, async { i }).await;
            assert_eq!(ready, Some(i), "a ready future wins");
            let slow = until(timer.as_mut(), at, tokio::time::sleep(step / 2)).await;
            assert_eq!(
                slow,
                Some(()),
                "a wait shorter than the deadline ends first"
            );
        }
        let start = Instant::now();
        let never = until(timer.as_mut(), start + step, std::future::pending::<()>()).await;
        assert_eq!(never, None);
        assert_eq!(Instant::now(), start + step, "fires at its deadline");
        // Fired, then moved: it fires again, earlier or later.
        for d in [step * 3, step / 4] {
            let start = Instant::now();
            let never = until(timer.as_mut(), start + d, std::future::pending::<()>()).await;
            assert_eq!((never, Instant::now()), (None, start + d));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_is_kept_at_its_own_instant() {
        let mut timer = pin!(kept());
        let step = Duration::from_secs(1);
        let first = Instant::now() + step;
        let quick = until(timer.as_mut(), first, tokio::time::sleep(step / 2)).await;
        assert_eq!(quick, Some(()));
        // Still filed for `first`, halfway to the next wait's deadline: left there.
        let at = Instant::now() + step;
        let never = until(timer.as_mut(), at, std::future::pending::<()>()).await;
        assert_eq!(
            (never, Instant::now()),
            (None, at),
            "woken at `first`, filed again, fired at its own deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_filed_less_than_halfway_is_filed_again_and_wakes_no_one() {
        let mut timer = pin!(kept());
        let step = Duration::from_secs(1);
        let quick = until(
            timer.as_mut(),
            Instant::now() + step,
            tokio::time::sleep(step / 10),
        )
        .await;
        assert_eq!(quick, Some(()), "filed for 1 s from now");
        // The next wait is 10 s long: 0.9 s away is not halfway, so the
        // timer is filed for 10 s, and the task is polled only when the
        // 5 s sleep ends.
        let mut polls = 0;
        let at = Instant::now() + step * 10;
        let mut wait = pin!(until(timer.as_mut(), at, tokio::time::sleep(step * 5)));
        let done = std::future::poll_fn(|cx| {
            polls += 1;
            wait.as_mut().poll(cx)
        })
        .await;
        assert_eq!((done, polls), (Some(()), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_last_polled_by_another_waker_is_registered_again() {
        let mut timer = pin!(kept());
        let step = Duration::from_secs(1);
        {
            let other = pin!(until(
                timer.as_mut(),
                Instant::now() + step,
                std::future::pending::<()>()
            ));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(
                other.poll(&mut cx).is_pending(),
                "filed, with a waker that is not this task's"
            );
        }
        let at = Instant::now() + step * 2;
        let never = until(timer.as_mut(), at, std::future::pending::<()>());
        let woken = tokio::time::timeout(step * 10, never).await;
        assert_eq!(
            (woken, Instant::now()),
            (Ok(None), at),
            "this task was woken"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_earlier_is_kept() {
        let mut timer = pin!(kept());
        let start = Instant::now();
        let late = until(timer.as_mut(), start + Duration::from_secs(60), async {}).await;
        assert_eq!(late, Some(()));
        let late = until(
            timer.as_mut(),
            start + Duration::from_secs(60),
            tokio::time::sleep(Duration::from_millis(1)),
        )
        .await;
        assert_eq!(late, Some(()), "filed for 60 s");
        let at = Instant::now() + Duration::from_millis(25);
        let early = until(timer.as_mut(), at, std::future::pending::<()>()).await;
        assert_eq!(
            (early, Instant::now()),
            (None, at),
            "moved earlier: 25 ms, not 60 s"
        );
    }
}
