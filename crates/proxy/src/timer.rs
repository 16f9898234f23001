//! Timers kept across the waits of a connection.
//!
//! A `tokio::time::timeout` per wait looks up the runtime's handle, files a
//! timer in the wheel under the driver's lock when the wait pends, and
//! takes the lock again to remove it when the wait ends: about 3 % of the
//! proxy's CPU samples at two such waits per request (the client's next
//! head, the upstream's answer), 1.6 % with kept timers. A kept timer is
//! made once per connection and moved to each wait's deadline instead.
//! Moving a filed timer later is one compare-and-swap; tokio re-files it
//! lazily, when its earlier instant comes (nginx's timers are lazy the same
//! way). Moving it earlier files it again, so each kind of wait whose
//! deadlines only grow (now plus a fixed timeout) keeps a timer of its own.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;

use tokio::time::{Instant, Sleep};

/// A timer to keep: made now, filed only when first moved to a deadline.
pub(crate) fn kept() -> Sleep {
    tokio::time::sleep_until(crate::clock::now())
}

/// `f`, unless `at` comes first (`None`), on the kept `timer`. The timer
/// is moved only once `f` has pended (most reads of a busy proxy are
/// ready at once).
pub(crate) async fn until<F: Future>(
    mut timer: Pin<&mut Sleep>,
    at: Instant,
    f: F,
) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut armed = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if !armed {
            armed = true;
            if timer.deadline() != at || timer.is_elapsed() {
                timer.as_mut().reset(at);
            }
        }
        timer.as_mut().poll(cx).map(|()| None)
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
