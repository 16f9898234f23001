//! The store seam: what a session backend must do, in session terms.
//!
//! A stored session is a flat map of field -> text (a Redis hash). The
//! [`Session`](crate::Session) layer decides what fields mean; stores only
//! apply [`Op`]s atomically per call and slide the TTL. Keeping the
//! operations this small is what lets two backends write the same session at
//! once without losing each other's work (see the crate docs, "Concurrency").

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::id::SessionId;

/// The stored fields of one session.
pub type Record = BTreeMap<String, String>;

/// One field change, applied in order inside one atomic store call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Replace the field (last writer wins for this field).
    Set { field: String, value: String },
    /// Remove the field.
    Del { field: String },
    /// Add to an integer field, creating it at 0 (commutes with other writers).
    Incr { field: String, by: i64 },
}

/// Whether a write may create the session or must find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// The id is new: fail with [`Written::Exists`] if it is taken.
    Create,
    /// The session must exist: fail with [`Written::Missing`] if it expired or
    /// was destroyed, so a late writer never resurrects a logged-out session.
    Update,
}

/// The outcome of a write or a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// Applied; the session as stored afterwards, other writers' changes included.
    Saved(Record),
    /// `Update`/rotation found no session under the (old) id.
    Missing,
    /// `Create`/rotation found the new id already taken.
    Exists,
}

/// How long an idle session lives. Whole seconds, at least one, because Redis
/// expires keys in seconds (`EX`/`EXPIRE`); building one from a [`Duration`] is
/// the only way in and [`Ttl::secs`] the only way out, so a count of minutes
/// can never be passed where seconds are meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ttl(NonZeroU64);

/// Why a store call failed. Every variant means "the session is unavailable
/// right now"; the layer answers 503 with [`StoreError::reason`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("session store unreachable: {0}")]
    Unavailable(String),
    #[error("session store rejected the command: {0}")]
    Command(String),
}

/// The backend a [`Session`](crate::Session) reads and writes.
///
/// Every method is one atomic step on the store and slides the TTL of what it
/// touches. Methods return boxed futures so stores can be `Arc<dyn SessionStore>`.
pub trait SessionStore: Send + Sync + 'static {
    /// All fields, and the TTL reset to `ttl`; `None` when there is no session.
    fn load<'a>(
        &'a self,
        id: &'a SessionId,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;
    /// Only the TTL reset (`EXPIRE`), nothing rewritten; `false` when missing.
    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Ttl) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Applies `ops` and resets the TTL, atomically.
    fn write<'a>(
        &'a self,
        id: &'a SessionId,
        ops: &'a [Op],
        mode: WriteMode,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>>;
    /// Moves the session from `from` to `to`, applies `ops` there and resets the TTL.
    fn rotate<'a>(
        &'a self,
        from: &'a SessionId,
        to: &'a SessionId,
        ops: &'a [Op],
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Written, StoreError>>;
    /// Deletes the session; `false` when it was already gone.
    fn destroy<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Time left before the session expires; `None` when there is no session.
    fn ttl<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Duration>, StoreError>>;
    /// Whether the store answers (for `/healthz`).
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Where sessions live, without credentials, for logs and status pages.
    fn describe(&self) -> String;
}

// === impl Ttl ===

impl Ttl {
    /// `None` unless `d` is whole seconds and at least one second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stackd_session::Ttl;
    /// assert_eq!(Ttl::new(Duration::from_secs(1800)).map(|t| t.secs()), Some(1800));
    /// assert!(Ttl::new(Duration::from_millis(1500)).is_none());
    /// assert!(Ttl::new(Duration::ZERO).is_none());
    /// ```
    pub fn new(d: Duration) -> Option<Ttl> {
        if d.subsec_nanos() != 0 {
            return None;
        }
        NonZeroU64::new(d.as_secs()).map(Ttl)
    }

    /// Seconds, for Redis `EX`/`EXPIRE` and the `ttl_secs` JSON field.
    pub fn secs(self) -> u64 {
        self.0.get()
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0.get())
    }
}

// === impl StoreError ===

impl StoreError {
    /// A short reason for a 503 body or a health page.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stackd_session::StoreError;
    /// let e = StoreError::Timeout(Duration::from_secs(2));
    /// assert_eq!(e.reason(), "session store did not answer within 2s");
    /// ```
    pub fn reason(&self) -> String {
        self.to_string()
    }
}
