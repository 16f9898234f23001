//! The test kit: everything a stackd test needs to run the real thing
//! (real TCP, a real `redis-server`, real network namespaces, the real
//! `stackd` binary) and to clean up after itself, also when it fails.
//!
//! Every test in the workspace uses it, and `stackd lab` is built on it too:
//! the lab is the same job done for people. Nothing here talks to anything
//! but loopback or namespaces the caller created.
//!
//! # Layout
//! - [`net`]: free loopback ports.
//! - [`wait`]: poll a condition with a deadline, sync or async.
//! - [`http`]: a raw HTTP/1 client that sends exactly the bytes it is given
//!   (so tests can misbehave), a response parser, a browser with a cookie jar.
//! - [`backend`]: small HTTP/1 backends on plain threads: one that answers its
//!   name, one that hands each connection to a script.
//! - [`redis`]: `redis-server` and `redis-sentinel` on free ports.
//! - [`netns`]: hosts as network namespaces on one bridge.
//! - [`process`]: a child that is killed by PID on drop, signals, the
//!   `stackd` binary, root checks.
//!
//! Failures panic with a sentence that says what was waited for and where
//! the logs are: in a test a panic is the report.

pub mod backend;
pub mod http;
pub mod net;
pub mod netns;
pub mod process;
pub mod redis;
pub mod wait;

pub use net::{free_addr, free_port};
pub use process::{require_root, stackd_bin, Guard};
pub use wait::{eventually, poll, until_ok, wait_until};
