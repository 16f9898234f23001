//! What the end-to-end scenarios share. The scenarios themselves are in
//! `tests/*.rs`, one file per story; each runs the real `stackd` binary
//! (built by [`stackd_testkit::stackd_bin`]) beside real `redis-server`,
//! keepalived and network namespaces, and cleans up on failure.
//!
//! # Layout
//! - [`ha`]: px1, px2 and a client in namespaces, with `stackd ha` or
//!   keepalived on the proxies, for the VRRP scenarios.
//! - [`lab`]: `stackd lab` on loopback, with what its banner says.
//! - [`poller`]: a client opening a new connection every few ms, counting
//!   failed requests and lost sessions.
//! - [`browser`]: headless Chromium screenshots and DOM dumps.

pub mod browser;
pub mod ha;
pub mod lab;
pub mod poller;
