//! The demo backend served in-process, for the session tests: each test
//! file uses the parts it needs, hence `dead_code` is allowed. Processes,
//! ports and HTTP come from `stackd_testkit`.
#![allow(dead_code)]

pub mod backend;
