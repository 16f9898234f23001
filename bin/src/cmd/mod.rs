//! The operator commands that are not long-running services: each turns its
//! arguments into output and an exit code, with the work in library code.

pub mod check;
pub mod ctl;
pub mod docs;
pub mod roff;
pub mod status;
