//! [`Session`]: a request's view of one stored session.
//!
//! Values are serde types stored as JSON text, one store field per name
//! (`d:<name>`), plus `m:created`. Nothing is read until a handler asks
//! (lazy load), and a write sends only what changed in this request:
//! [`Session::insert`] becomes one `HSET`, [`Session::incr`] one `HINCRBY`. A
//! request that reads but changes nothing costs one load (which also slides
//! the TTL) and no write; one that touches nothing costs one `EXPIRE`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::id::{CookieValue, SessionId};
use crate::store::{Op, Record, SessionStore, StoreError, Ttl, WriteMode, Written};

/// Store field holding the creation time (unix seconds).
pub(crate) const CREATED_FIELD: &str = "m:created";
/// Prefix of store fields holding user values.
pub(crate) const DATA_PREFIX: &str = "d:";
/// Attempts at a fresh id before giving up (a clash of 128-bit ids means a broken RNG).
const CREATE_ATTEMPTS: usize = 3;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("session value {name:?} cannot be stored as JSON: {source}")]
    Encode {
        name: String,
        source: serde_json::Error,
    },
    #[error("session value {name:?} does not have the requested type: {reason}")]
    Decode { name: String, reason: String },
    #[error("a new session id clashed {CREATE_ATTEMPTS} times; the random generator is broken")]
    IdClash,
}

/// One request's handle on its session. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<State>>,
    store: Arc<dyn SessionStore>,
    ttl: Ttl,
    /// TTL of a session created by this request: the client has not shown it
    /// wants one yet (a crawler, a flood). Its next request slides it to `ttl`.
    first_ttl: Ttl,
}

struct State {
    /// What the request's cookie named, kept to decide whether to set a cookie.
    cookie: Option<CookieValue>,
    /// The id in the store; `None` for a session not stored yet (or gone).
    id: Option<SessionId>,
    /// The stored fields once loaded (empty for a new session).
    record: Option<Record>,
    /// Changes of this request, by value name.
    pending: BTreeMap<String, Pending>,
    rotate: bool,
    destroyed: bool,
    /// The TTL was already refreshed during this request.
    slid: bool,
}

#[derive(Clone, Debug)]
enum Pending {
    Set(Value),
    Del,
    Incr(i64),
}

/// What the response must do with the cookie after [`Session::save`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieChange {
    None,
    Set(CookieValue),
    Expire,
}

// === impl Session ===

impl Session {
    /// A session for a request that carried `cookie` (or none).
    pub fn new(store: Arc<dyn SessionStore>, ttl: Ttl, cookie: Option<CookieValue>) -> Session {
        let state = State {
            id: cookie.as_ref().map(|c| c.id.clone()),
            cookie,
            record: None,
            pending: BTreeMap::new(),
            rotate: false,
            destroyed: false,
            slid: false,
        };
        Session {
            state: Arc::new(Mutex::new(state)),
            store,
            ttl,
            first_ttl: ttl,
        }
    }

    /// Sessions this request creates live `first` (capped at the idle TTL)
    /// until the client comes back with the cookie.
    pub fn with_first_ttl(mut self, first: Ttl) -> Session {
        self.first_ttl = first.min(self.ttl);
        self
    }

    /// The idle lifetime of an established session.
    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    /// The stored id, after loading if needed: `None` while the session is new.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionError> {
        Ok(self.loaded().await?.id.clone())
    }

    /// The value stored under `name`, with this request's changes applied.
    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, SessionError> {
        let st = self.loaded().await?;
        match st.value(name)? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| SessionError::Decode {
                    name: name.into(),
                    reason: e.to_string(),
                }),
        }
    }

    /// Stores `value` under `name` (sent at [`Session::save`]). Does not load.
    pub async fn insert<T: Serialize>(&self, name: &str, value: &T) -> Result<(), SessionError> {
        let v = serde_json::to_value(value).map_err(|source| SessionError::Encode {
            name: name.into(),
            source,
        })?;
        self.state
            .lock()
            .await
            .pending
            .insert(name.into(), Pending::Set(v));
        Ok(())
    }

    /// Removes `name`. Does not load.
    pub async fn remove(&self, name: &str) {
        self.state
            .lock()
            .await
            .pending
            .insert(name.into(), Pending::Del);
    }

    /// Adds `by` to the integer under `name` (0 when absent) and returns the
    /// value as this request sees it. Stored as an increment, so concurrent
    /// requests on other backends add up instead of overwriting each other.
    pub async fn incr(&self, name: &str, by: i64) -> Result<i64, SessionError> {
        let mut st = self.loaded().await?;
        let current = match st.value(name)? {
            None => 0,
            Some(v) => v.as_i64().ok_or_else(|| SessionError::Decode {
                name: name.into(),
                reason: format!("{v} is not an integer"),
            })?,
        };
        let next = current
            .checked_add(by)
            .ok_or_else(|| SessionError::Decode {
                name: name.into(),
                reason: "overflow".into(),
            })?;
        let p = match st.pending.get(name) {
            None => Pending::Incr(by),
            Some(Pending::Incr(n)) => Pending::Incr(n.saturating_add(by)),
            Some(Pending::Set(_) | Pending::Del) => Pending::Set(Value::from(next)),
        };
        st.pending.insert(name.into(), p);
        Ok(next)
    }

    /// When the session was created (unix seconds); `None` while it is new.
    pub async fn created_at(&self) -> Result<Option<u64>, SessionError> {
        let st = self.loaded().await?;
        Ok(st
            .record
            .as_ref()
            .and_then(|r| r.get(CREATED_FIELD))
            .and_then(|v| v.parse().ok()))
    }

    /// Gives the session a new id at the next save, moving its data atomically:
    /// call on every privilege change (login) against session fixation.
    pub async fn rotate_id(&self) {
        self.state.lock().await.rotate = true;
    }

    /// Deletes the session from the store now and forgets pending changes.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let mut st = self.state.lock().await;
        if let Some(id) = st.id.take() {
            self.store.destroy(&id).await?;
        }
        st.record = Some(Record::new());
        st.pending.clear();
        st.rotate = false;
        st.destroyed = true;
        Ok(())
    }

    /// The state, loaded from the store if this is the first read.
    async fn loaded(&self) -> Result<tokio::sync::MutexGuard<'_, State>, SessionError> {
        let mut st = self.state.lock().await;
        st.ensure_loaded(&*self.store, self.ttl).await?;
        Ok(st)
    }
}

mod save;

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// === impl State ===

impl State {
    async fn ensure_loaded(
        &mut self,
        store: &dyn SessionStore,
        ttl: Ttl,
    ) -> Result<(), StoreError> {
        if self.record.is_some() {
            return Ok(());
        }
        let found = match &self.id {
            Some(id) => store.load(id, ttl).await?,
            None => None,
        };
        if found.is_none() {
            // Expired, destroyed elsewhere, or never existed: start afresh with
            // a new id at save; a client never gets to choose its id.
            self.id = None;
        } else {
            self.slid = true;
        }
        self.record = Some(found.unwrap_or_default());
        Ok(())
    }

    /// The stored value of `name` with pending changes applied.
    fn value(&self, name: &str) -> Result<Option<Value>, SessionError> {
        let stored = || -> Result<Option<Value>, SessionError> {
            let raw = self
                .record
                .as_ref()
                .and_then(|r| r.get(&format!("{DATA_PREFIX}{name}")));
            raw.map(|s| {
                serde_json::from_str(s).map_err(|e| SessionError::Decode {
                    name: name.into(),
                    reason: format!("stored text is not JSON: {e}"),
                })
            })
            .transpose()
        };
        match self.pending.get(name) {
            Some(Pending::Set(v)) => Ok(Some(v.clone())),
            Some(Pending::Del) => Ok(None),
            Some(Pending::Incr(n)) => {
                let base = stored()?.and_then(|v| v.as_i64()).unwrap_or(0);
                Ok(Some(Value::from(base.saturating_add(*n))))
            }
            None => stored(),
        }
    }
}

#[cfg(test)]
mod tests;
