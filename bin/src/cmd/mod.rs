//! The operator commands that are not long-running services: each turns its
//! arguments into output and an exit code, with the work in library code.

pub mod check;
pub mod ctl;
pub mod docs;
pub mod roff;
pub mod status;

/// The file names no admin listener to ask: a config the operator must fix (exit 64).
pub fn no_admin(path: &std::path::Path, tables: &str) -> stackd_common::ConfigError {
    stackd_common::ConfigError::Invalid(vec![stackd_common::config::Problem {
        file: path.to_owned(),
        line: 1,
        column: 1,
        key: String::new(),
        message: format!("no admin listener to ask: set admin = \"127.0.0.1:9090\" in {tables}"),
    }])
}
