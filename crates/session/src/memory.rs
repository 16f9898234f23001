//! An in-process store with the Redis store's semantics, for `stackd lab`
//! without Redis and for unit tests of the session logic.
//!
//! One mutex around a map makes every call atomic, like a Redis script. Expiry
//! uses `tokio::time::Instant` so paused-time tests can move the clock; expired
//! entries vanish on access and in a sweep every 1024 writes, so an
//! abandoned session does not stay in memory forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{self, BoxFuture, FutureExt};
use tokio::time::Instant;

use crate::id::SessionId;
use crate::store::{Op, Record, SessionStore, StoreError, Ttl, WriteMode, Written};

const SWEEP_EVERY: u64 = 1024;

/// Sessions in this process only.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    map: Mutex<HashMap<SessionId, Entry>>,
    writes: AtomicU64,
}

struct Entry {
    fields: Record,
    expires: Instant,
}

// === impl MemoryStore ===

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of live sessions (tests and status pages).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock().values().filter(|e| e.expires > now).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map, with entries already expired at `now` removed. A poisoned lock
    /// only means another task panicked mid-call; each call leaves the map
    /// consistent, so the data is still good.
    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
        self.inner.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live<'m>(map: &'m mut HashMap<SessionId, Entry>, id: &SessionId) -> Option<&'m mut Entry> {
        let now = Instant::now();
        if map.get(id).is_some_and(|e| e.expires <= now) {
            map.remove(id);
        }
        map.get_mut(id)
    }

    fn sweep_sometimes(&self, map: &mut HashMap<SessionId, Entry>) {
        if self.inner.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0 {
            let now = Instant::now();
            map.retain(|_, e| e.expires > now);
        }
    }

    fn write_now(
        &self,
        id: &SessionId,
        ops: &[Op],
        mode: WriteMode,
        ttl: Ttl,
    ) -> Result<Written, StoreError> {
        let mut map = self.lock();
        self.sweep_sometimes(&mut map);
        let exists = Self::live(&mut map, id).is_some();
        match (mode, exists) {
            (WriteMode::Create, true) => return Ok(Written::Exists),
            (WriteMode::Update, false) => return Ok(Written::Missing),
            _ => {}
        }
        let mut fields = map.get(id).map(|e| e.fields.clone()).unwrap_or_default();
        apply(&mut fields, ops)?;
        let expires = Instant::now() + ttl.duration();
        map.insert(
            id.clone(),
            Entry {
                fields: fields.clone(),
                expires,
            },
        );
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
        if Self::live(&mut map, to).is_some() {
            return Ok(Written::Exists);
        }
        let Some(old) = Self::live(&mut map, from) else {
            return Ok(Written::Missing);
        };
        let mut fields = old.fields.clone();
        apply(&mut fields, ops)?;
        map.remove(from);
        let expires = Instant::now() + ttl.duration();
        map.insert(
            to.clone(),
            Entry {
                fields: fields.clone(),
                expires,
            },
        );
        Ok(Written::Saved(fields))
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
        let mut map = self.lock();
        let out = Self::live(&mut map, id).map(|e| {
            e.expires = Instant::now() + ttl.duration();
            e.fields.clone()
        });
        ready(Ok(out))
    }

    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Ttl) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut map = self.lock();
        let found = Self::live(&mut map, id).map(|e| e.expires = Instant::now() + ttl.duration());
        ready(Ok(found.is_some()))
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
        let mut map = self.lock();
        let found = Self::live(&mut map, id).is_some();
        map.remove(id);
        ready(Ok(found))
    }

    fn ttl<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
        let mut map = self.lock();
        let left =
            Self::live(&mut map, id).map(|e| e.expires.saturating_duration_since(Instant::now()));
        ready(Ok(left))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        ready(Ok(()))
    }

    fn describe(&self) -> String {
        "memory://".into()
    }
}
