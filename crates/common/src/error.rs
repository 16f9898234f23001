//! Errors of the shared layer. Each variant carries what the operator needs to
//! fix the problem: the file, the position, the key.

use std::path::PathBuf;

use crate::config::Problem;

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found, in file order.
    #[error("{}", render(.0))]
    Invalid(Vec<Problem>),
    #[error("{}: no [{section}] table; this subcommand reads its settings from [{section}]", path.display())]
    MissingSection {
        path: PathBuf,
        section: &'static str,
    },
}

fn render(problems: &[Problem]) -> String {
    let mut s = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&p.to_string());
    }
    s
}

impl ConfigError {
    /// The located problems, if the file was read but is wrong.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(p) => p,
            _ => &[],
        }
    }
}
