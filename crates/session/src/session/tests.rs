//! Session logic on the memory store: dirty tracking, sliding TTL, rotation,
//! destroy, concurrent updates.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::*;
use crate::memory::MemoryStore;

/// Counts writes on the way to a real MemoryStore (a decorator, not a mock:
/// every call still does the real thing).
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    writes: AtomicUsize,
    loads: AtomicUsize,
    touches: AtomicUsize,
}

impl SessionStore for Counting {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(id, ttl)
    }
    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Ttl) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(id, ttl)
    }
    fn write<'a>(
        &'a self,
        id: &'a SessionId,
        ops: &'a [Op],
        mode: WriteMode,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(id, ops, mode, ttl)
    }
    fn rotate<'a>(
        &'a self,
        from: &'a SessionId,
        to: &'a SessionId,
        ops: &'a [Op],
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.rotate(from, to, ops, ttl)
    }
    fn destroy<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.destroy(id)
    }
    fn ttl<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        self.inner.ttl(id)
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.ping()
    }
    fn describe(&self) -> String {
        "counting".into()
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Cart {
    items: Vec<String>,
}

fn ttl(secs: u64) -> Ttl {
    Ttl::new(Duration::from_secs(secs)).unwrap()
}

/// A request carrying the cookie of `id` (or none), on node "n1".
fn request(store: &Arc<Counting>, id: Option<&SessionId>, secs: u64) -> Session {
    let cookie = id.map(|id| CookieValue {
        id: id.clone(),
        node: Some("n1".into()),
    });
    Session::new(store.clone(), ttl(secs), cookie)
}

async fn stored_id(s: &Session) -> SessionId {
    s.id().await.unwrap().expect("session stored")
}

#[tokio::test]
async fn untouched_new_session_stores_nothing_and_sets_no_cookie() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 60);
    s.save().await.unwrap();
    assert_eq!(s.cookie_change(Some("n1")).await, CookieChange::None);
    assert!(store.inner.is_empty());
    assert_eq!(store.writes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn typed_values_round_trip_and_only_changes_are_written() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 60);
    let cart = Cart {
        items: vec!["book".into()],
    };
    s.insert("cart", &cart).await.unwrap();
    s.save().await.unwrap();
    let id = stored_id(&s).await;
    assert_eq!(
        s.cookie_change(Some("n1")).await,
        CookieChange::Set(CookieValue {
            id: id.clone(),
            node: Some("n1".into())
        })
    );
    assert_eq!(store.writes.load(Ordering::SeqCst), 1);

    // Next request: read only -> one load, no write, no cookie.
    let s = request(&store, Some(&id), 60);
    assert_eq!(s.get::<Cart>("cart").await.unwrap(), Some(cart));
    assert!(!s.is_dirty().await);
    s.save().await.unwrap();
    assert_eq!(
        (
            store.loads.load(Ordering::SeqCst),
            store.writes.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    assert_eq!(s.cookie_change(Some("n1")).await, CookieChange::None);
    // Served by another node: same id, cookie re-set with the new suffix.
    assert_eq!(
        s.cookie_change(Some("n2")).await,
        CookieChange::Set(CookieValue {
            id,
            node: Some("n2".into())
        })
    );

    // Wrong type is a typed error, not a panic.
    assert!(matches!(
        s.get::<u32>("cart").await,
        Err(SessionError::Decode { .. })
    ));
}

/// Real time (1s steps) rather than paused time, so the test runs the same
/// clock the store uses; a 2s TTL outlives three 1.2s gaps only by sliding.
#[tokio::test]
async fn ttl_slides_on_access_without_rewriting() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 2);
    s.insert("user", &"ann").await.unwrap();
    s.save().await.unwrap();
    let id = stored_id(&s).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // Neither read nor changed: only EXPIRE.
        let s = request(&store, Some(&id), 2);
        s.save().await.unwrap();
        let left = store.inner.ttl(&id).await.unwrap().expect("still there");
        assert!(left > Duration::from_millis(1500), "{left:?}");
    }
    assert_eq!(
        (
            store.touches.load(Ordering::SeqCst),
            store.writes.load(Ordering::SeqCst)
        ),
        (3, 1)
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let s = request(&store, Some(&id), 2);
    assert_eq!(s.get::<String>("user").await.unwrap(), None);
    assert_eq!(s.id().await.unwrap(), None, "an expired id is not reused");
}

#[tokio::test]
async fn rotation_moves_data_to_a_new_id_and_applies_changes() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 60);
    s.incr("visits", 3).await.unwrap();
    s.save().await.unwrap();
    let old = stored_id(&s).await;

    let s = request(&store, Some(&old), 60);
    s.insert("user", &"ann").await.unwrap();
    s.rotate_id().await;
    s.save().await.unwrap();
    let new = stored_id(&s).await;
    assert_ne!(old, new);
    assert!(
        store.inner.ttl(&old).await.unwrap().is_none(),
        "old id is gone"
    );
    let s = request(&store, Some(&new), 60);
    assert_eq!(s.get::<i64>("visits").await.unwrap(), Some(3));
    assert_eq!(
        s.get::<String>("user").await.unwrap().as_deref(),
        Some("ann")
    );
    assert!(s.created_at().await.unwrap().is_some());
}

#[tokio::test]
async fn destroy_deletes_expires_cookie_and_late_writers_do_not_resurrect() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 60);
    s.insert("user", &"ann").await.unwrap();
    s.save().await.unwrap();
    let id = stored_id(&s).await;

    // A slow request loaded the session before the logout...
    let slow = request(&store, Some(&id), 60);
    assert_eq!(slow.incr("visits", 1).await.unwrap(), 1);
    // ...logout happens...
    let out = request(&store, Some(&id), 60);
    out.destroy().await.unwrap();
    out.save().await.unwrap();
    assert_eq!(out.cookie_change(Some("n1")).await, CookieChange::Expire);
    assert!(store.inner.ttl(&id).await.unwrap().is_none());
    // ...then the slow request saves: a new session, without the user.
    slow.save().await.unwrap();
    let fresh = stored_id(&slow).await;
    assert_ne!(fresh, id);
    assert!(
        store.inner.ttl(&id).await.unwrap().is_none(),
        "logged-out session stays gone"
    );
    assert_eq!(slow.get::<String>("user").await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_increments_add_up_and_different_fields_merge() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 60);
    s.incr("visits", 0).await.unwrap();
    s.save().await.unwrap();
    let id = stored_id(&s).await;

    let mut tasks = Vec::new();
    for t in 0..8 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let s = request(&store, Some(&id), 60);
                s.incr("visits", 1).await.unwrap();
                s.insert(&format!("t{t}"), &i).await.unwrap();
                tokio::task::yield_now().await; // interleave load and save
                s.save().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = request(&store, Some(&id), 60);
    assert_eq!(s.get::<i64>("visits").await.unwrap(), Some(200));
    for t in 0..8 {
        assert_eq!(s.get::<i64>(&format!("t{t}")).await.unwrap(), Some(24));
    }
}

#[tokio::test]
async fn pending_changes_compose_within_a_request() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 60);
    assert_eq!(s.incr("n", 2).await.unwrap(), 2);
    assert_eq!(s.incr("n", 3).await.unwrap(), 5);
    s.insert("m", &10).await.unwrap();
    assert_eq!(s.incr("m", 1).await.unwrap(), 11);
    s.insert("gone", &true).await.unwrap();
    s.remove("gone").await;
    s.save().await.unwrap();
    let id = stored_id(&s).await;
    let s = request(&store, Some(&id), 60);
    assert_eq!(s.get::<i64>("n").await.unwrap(), Some(5));
    assert_eq!(s.get::<i64>("m").await.unwrap(), Some(11));
    assert_eq!(s.get::<bool>("gone").await.unwrap(), None);
    s.insert("word", &"x").await.unwrap();
    assert!(matches!(
        s.incr("word", 1).await,
        Err(SessionError::Decode { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_session_seen_once_lives_the_first_ttl_until_its_client_returns() {
    let store = Arc::new(Counting::default());
    let s = request(&store, None, 1800).with_first_ttl(ttl(60));
    assert_eq!(s.incr("visits", 1).await.unwrap(), 1);
    s.save().await.unwrap();
    let id = stored_id(&s).await;
    assert_eq!(store.ttl(&id).await.unwrap(), Some(Duration::from_secs(60)));

    // The browser comes back with the cookie: now it is a real session.
    let s = request(&store, Some(&id), 1800).with_first_ttl(ttl(60));
    assert_eq!(s.incr("visits", 1).await.unwrap(), 2);
    s.save().await.unwrap();
    assert_eq!(
        store.ttl(&id).await.unwrap(),
        Some(Duration::from_secs(1800))
    );

    // A session nobody came back to is gone after the first TTL.
    let once = request(&store, None, 1800).with_first_ttl(ttl(60));
    once.incr("visits", 1).await.unwrap();
    once.save().await.unwrap();
    let gone = stored_id(&once).await;
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(store.ttl(&gone).await.unwrap(), None);
    assert!(store.ttl(&id).await.unwrap().is_some());
    // A first TTL above the idle TTL is capped.
    assert_eq!(
        request(&store, None, 30).with_first_ttl(ttl(60)).ttl(),
        ttl(30)
    );
}
