//! An in-process store with the Redis store's semantics, for `stackd lab`
//! without Redis and for unit tests of the session logic.
//!
//! One mutex around the map makes every call atomic, like a Redis script.
//! Expiry uses `tokio::time::Instant` so paused-time tests can move the
//! clock. The map is bounded: a second index orders sessions by expiry, so
//! each call drops what has expired (only those, never a walk over the whole
//! map under the lock), and a new session beyond the cap evicts the one
//! closest to expiry — which, with `new_session_ttl`, is a session nobody
//! came back to, not a user's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{self, BoxFuture, FutureExt};
use tokio::time::Instant;

use crate::id::SessionId;
use crate::store::{Op, Record, SessionStore, StoreError, Ttl, WriteMode, Written};

/// Sessions kept by [`MemoryStore::new`].
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// Sessions in this process only.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Map>>,
}

struct Map {
    entries: HashMap<SessionId, Entry>,
    /// (expiry, tie-breaker) -> id: the soonest to expire first.
    by_expiry: BTreeMap<(Instant, u64), SessionId>,
    next: u64,
    max: usize,
}

struct Entry {
    fields: Record,
    key: (Instant, u64),
}

// === impl MemoryStore ===

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_capacity(DEFAULT_MAX_SESSIONS)
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that keeps at most `max` sessions (at least one).
    pub fn with_capacity(max: usize) -> MemoryStore {
        let map = Map {
            entries: HashMap::new(),
            by_expiry: BTreeMap::new(),
            next: 0,
            max: max.max(1),
        };
        MemoryStore {
            inner: Arc::new(Mutex::new(map)),
        }
    }

    /// Number of live sessions (tests and status pages).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map, with what has expired by now removed. A poisoned lock only
    /// means another task panicked mid-call; each call leaves the map
    /// consistent, so the data is still good.
    fn lock(&self) -> MutexGuard<'_, Map> {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.expire(Instant::now());
        m
    }

    fn write_now(
        &self,
        id: &SessionId,
        ops: &[Op],
        mode: WriteMode,
        ttl: Ttl,
    ) -> Result<Written, StoreError> {
        let mut map = self.lock();
        let exists = map.entries.contains_key(id);
        match (mode, exists) {
            (WriteMode::Create, true) => return Ok(Written::Exists),
            (WriteMode::Update, false) => return Ok(Written::Missing),
            _ => {}
        }
        let mut fields = map
            .entries
            .get(id)
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        apply(&mut fields, ops)?;
        map.put(id.clone(), fields.clone(), ttl);
        Ok(Written::Saved(fields))
    }

    fn rotate_now(
        &self,
        from: &SessionId,
        to: &SessionId,
        ops: &[Op],
        ttl: Ttl,
    ) -> Result<Written, StoreError> {
        let mut map = self.lock();
        if map.entries.contains_key(to) {
            return Ok(Written::Exists);
        }
        let Some(old) = map.entries.get(from) else {
            return Ok(Written::Missing);
        };
        let mut fields = old.fields.clone();
        apply(&mut fields, ops)?;
        map.remove(from);
        map.put(to.clone(), fields.clone(), ttl);
        Ok(Written::Saved(fields))
    }
}

// === impl Map ===

impl Map {
    /// Drops every session expired at `now`: the front of the expiry index.
    fn expire(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            self.entries.remove(&id);
        }
    }

    fn remove(&mut self, id: &SessionId) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        self.by_expiry.remove(&e.key);
        Some(e)
    }

    /// Stores `fields` under `id` for `ttl`, evicting the session closest to
    /// expiry if a new one would exceed the cap.
    fn put(&mut self, id: SessionId, fields: Record, ttl: Ttl) {
        if self.remove(&id).is_none() && self.entries.len() >= self.max {
            if let Some((_, oldest)) = self.by_expiry.pop_first() {
                self.entries.remove(&oldest);
            }
        }
        let key = self.key(ttl);
        self.by_expiry.insert(key, id.clone());
        self.entries.insert(id, Entry { fields, key });
    }

    /// Slides the expiry of `id`; the fields if it exists.
    fn slide(&mut self, id: &SessionId, ttl: Ttl) -> Option<Record> {
        let old = self.entries.get(id)?.key;
        self.by_expiry.remove(&old);
        let key = self.key(ttl);
        self.by_expiry.insert(key, id.clone());
        let e = self.entries.get_mut(id)?;
        e.key = key;
        Some(e.fields.clone())
    }

    fn key(&mut self, ttl: Ttl) -> (Instant, u64) {
        self.next += 1;
        (Instant::now() + ttl.duration(), self.next)
    }
}

/// Applies `ops` to `fields` all or nothing, with Redis `HSET`/`HDEL`/`HINCRBY`
/// semantics (including the error for incrementing a non-integer).
fn apply(fields: &mut Record, ops: &[Op]) -> Result<(), StoreError> {
    let mut next = fields.clone();
    for op in ops {
        match op {
            Op::Set { field, value } => {
                next.insert(field.clone(), value.clone());
            }
            Op::Del { field } => {
                next.remove(field);
            }
            Op::Incr { field, by } => {
                let cur = match next.get(field) {
                    None => 0,
                    Some(v) => v
                        .parse::<i64>()
                        .map_err(|_| StoreError::Command("hash value is not an integer".into()))?,
                };
                let sum = cur.checked_add(*by).ok_or_else(|| {
                    StoreError::Command("increment or decrement would overflow".into())
                })?;
                next.insert(field.clone(), sum.to_string());
            }
        }
    }
    *fields = next;
    Ok(())
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    future::ready(v).boxed()
}

impl SessionStore for MemoryStore {
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        ready(Ok(self.lock().slide(id, ttl)))
    }

    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Ttl) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(Ok(self.lock().slide(id, ttl).is_some()))
    }

    fn write<'a>(
        &'a self,
        id: &'a SessionId,
        ops: &'a [Op],
        mode: WriteMode,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        ready(self.write_now(id, ops, mode, ttl))
    }

    fn rotate<'a>(
        &'a self,
        from: &'a SessionId,
        to: &'a SessionId,
        ops: &'a [Op],
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>> {
        ready(self.rotate_now(from, to, ops, ttl))
    }

    fn destroy<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(Ok(self.lock().remove(id).is_some()))
    }

    fn ttl<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        let map = self.lock();
        let left = map
            .entries
            .get(id)
            .map(|e| e.key.0.saturating_duration_since(Instant::now()));
        ready(Ok(left))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        ready(Ok(()))
    }

    fn describe(&self) -> String {
        "memory://".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl(s: u64) -> Ttl {
        Ttl::new(Duration::from_secs(s)).expect("ttl")
    }

    fn set(v: &str) -> Vec<Op> {
        vec![Op::Set {
            field: "d:v".into(),
            value: v.into(),
        }]
    }

    #[tokio::test(start_paused = true)]
    async fn the_cap_evicts_the_session_closest_to_expiry() {
        let store = MemoryStore::with_capacity(3);
        let user = SessionId::generate();
        store
            .write(&user, &set("u"), WriteMode::Create, ttl(1800))
            .await
            .expect("w");
        let mut anon = Vec::new();
        for _ in 0..10 {
            let id = SessionId::generate();
            store
                .write(&id, &set("a"), WriteMode::Create, ttl(60))
                .await
                .expect("w");
            anon.push(id);
        }
        assert_eq!(store.len(), 3, "bounded");
        assert!(
            store.load(&user, ttl(1800)).await.expect("l").is_some(),
            "the user stays"
        );
        assert!(
            store.load(&anon[0], ttl(60)).await.expect("l").is_none(),
            "oldest anonymous went first"
        );
        assert!(store.load(&anon[9], ttl(60)).await.expect("l").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_is_by_deadline_and_sliding_moves_it() {
        let store = MemoryStore::new();
        let (a, b) = (SessionId::generate(), SessionId::generate());
        store
            .write(&a, &set("a"), WriteMode::Create, ttl(10))
            .await
            .expect("w");
        store
            .write(&b, &set("b"), WriteMode::Create, ttl(10))
            .await
            .expect("w");
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(store.touch(&a, ttl(10)).await.expect("t"));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(store.len(), 1, "b expired, a slid");
        assert!(store.load(&b, ttl(10)).await.expect("l").is_none());
        let left = store.ttl(&a).await.expect("ttl").expect("a lives");
        assert_eq!(left, Duration::from_secs(4));
        assert!(store.destroy(&a).await.expect("d"));
        assert!(store.is_empty());
    }
}
