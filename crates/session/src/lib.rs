//! Shared sessions for stackd: a [`Session`] per request, kept in Redis (or
//! memory), and the session-aware demo backend (`stackd demo-backend`).
//!
//! Two Tomcats behind a balancer share sessions through Redis so that a user
//! who logged in on one is still logged in on the other, even after the first
//! dies. This crate is that, for any hyper service.
//!
//! # Layout
//! Private modules, re-exported below as the crate's API:
//! - `id`: 128-bit CSPRNG session ids and the `<id>.<node>` cookie value
//!   ([`SessionId`], [`CookieValue`]).
//! - `cookie`: `Set-Cookie` building and `Cookie` parsing ([`CookieSettings`]).
//! - `store`: the [`SessionStore`] trait, [`Ttl`], [`StoreError`].
//! - `memory`: [`MemoryStore`], in-process with the same semantics, bounded.
//! - `redis`: [`RedisStore`]: plain, TLS, Sentinel and Cluster URLs.
//! - `session`: [`Session`]: typed values, dirty tracking, sliding TTL
//!   (a short first TTL until the client comes back), rotation, destroy.
//! - `layer`: [`SessionLayer`] loads the session per request and saves it after.
//! - [`demo`]: the demo backend's routes and server (`stackd demo-backend`).
//!
//! # Concurrency
//! A session is a Redis hash, one field per value. A request sends only its
//! own changes, atomically (one Lua script): `insert` is a field `HSET` (last
//! writer wins *for that field only*), `remove` an `HDEL`, `incr` an `HINCRBY`
//! (increments from concurrent requests on any backend add up; none is lost).
//! Two requests that change different values never interfere. A write to a
//! session that was destroyed meanwhile (logout elsewhere) does not bring it
//! back: it fails as `Missing` and the changes start a new session.
//! Rotation renames the hash in the same script (standalone and Sentinel);
//! in Cluster, where the two keys live in different slots, it takes the old
//! hash atomically and then writes the new one (see the `redis` module).

mod cookie;
pub mod demo;
mod id;
mod layer;
mod memory;
mod redis;
mod session;
mod store;

pub use cookie::CookieSettings;
pub use id::{CookieValue, SessionId};
pub use layer::{error_response, SessionLayer, WithSession};
pub use memory::{MemoryStore, DEFAULT_MAX_SESSIONS};
pub use redis::url::UrlError;
pub use redis::{open_store, open_store_with, OpenError, RedisStore, StoreOptions};
pub use session::{CookieChange, Session, SessionError};
pub use store::{Op, Record, SessionStore, StoreError, Ttl, WriteMode, Written};
