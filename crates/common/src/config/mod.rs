//! The stackd config file: one TOML file per host, one table per subcommand.
//!
//! Loading is two steps. Serde reads the file into structs that mirror its
//! shape (`deny_unknown_fields`, typed addresses, durations with units); any
//! syntax or type error stops there with its position. Then `validate` checks
//! what types cannot express (references, ranges, combinations) and reports
//! *every* finding at once, each located by [`diag::Locator`].
//!
//! # Layout
//! - [`units`]: durations and byte sizes as people write them.
//! - [`diag`]: key paths and file:line:column problems.
//! - `recover`: reading past a value that does not parse.
//! - [`proxy`], [`ha`], [`demo_backend`]: one module per table.

pub mod demo_backend;
pub mod diag;
pub mod ha;
pub mod proxy;
mod recover;
pub mod units;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use demo_backend::DemoBackendConfig;
pub use diag::{Finding, Findings, KeyPath, Locator, Problem};
pub use ha::HaConfig;
pub use proxy::ProxyConfig;
pub use units::{format_duration, parse_duration, ByteSize};

use crate::error::ConfigError;

/// A whole config file. Each subcommand takes the table it needs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub proxy: Option<ProxyConfig>,
    #[serde(default)]
    pub ha: Option<HaConfig>,
    #[serde(default)]
    pub demo_backend: Option<DemoBackendConfig>,
}

/// Which table a subcommand needs; used to say clearly when it is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Proxy,
    Ha,
    DemoBackend,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Proxy => "proxy",
            Section::Ha => "ha",
            Section::DemoBackend => "demo_backend",
        }
    }
}

// === impl Config ===

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text, path)
    }

    /// Parses and validates `text`; `origin` names the file in messages.
    ///
    /// Every problem is reported at once: a value that does not parse is
    /// noted and read past ([`recover`]), then the rest is validated.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let locator = Locator::new(origin, text);
        let read = recover::deserialize(text, &locator);
        let mut problems = read.problems;
        if let Some(cfg) = &read.config {
            let under_stand_in = |f: &Finding| read.swapped.iter().any(|s| f.path.starts_with(s));
            problems.extend(
                cfg.validate()
                    .0
                    .iter()
                    .filter(|f| !under_stand_in(f))
                    .map(|f| locator.locate(f)),
            );
        }
        match read.config {
            Some(cfg) if problems.is_empty() => Ok(cfg),
            _ => {
                problems.sort_by_key(|p| (p.line, p.column));
                Err(ConfigError::Invalid(problems))
            }
        }
    }

    /// Every semantic problem in the file.
    pub fn validate(&self) -> Findings {
        let mut out = Findings::default();
        if self.proxy.is_none() && self.ha.is_none() && self.demo_backend.is_none() {
            out.push(
                KeyPath::default(),
                "the file has none of the tables [proxy], [ha], [demo_backend]",
            );
        }
        if let Some(p) = &self.proxy {
            p.validate(&KeyPath::root("proxy"), &mut out);
        }
        if let Some(h) = &self.ha {
            h.validate(&KeyPath::root("ha"), &mut out);
        }
        if let Some(d) = &self.demo_backend {
            d.validate(&KeyPath::root("demo_backend"), &mut out);
        }
        out
    }

    /// One line for `stackd check`: what the file configures.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.proxy {
            let servers: usize = p.upstream.iter().map(|u| u.servers.len()).sum();
            parts.push(format!(
                "proxy: {} listener(s), {} upstream(s), {} server(s), {} route(s)",
                p.listen.len(),
                p.upstream.len(),
                servers,
                p.route.len()
            ));
        }
        if let Some(h) = &self.ha {
            let vips: usize = h.instance.iter().map(|i| i.virtual_ipaddress.len()).sum();
            parts.push(format!(
                "ha: {} instance(s), {} virtual address(es)",
                h.instance.len(),
                vips
            ));
        }
        if let Some(d) = &self.demo_backend {
            parts.push(format!("demo_backend: node {} on {}", d.node_id, d.listen));
        }
        parts.join("; ")
    }

    /// The table `section`, or an error that says the file lacks it.
    pub fn require<'a, T>(
        path: &Path,
        section: Section,
        table: Option<&'a T>,
    ) -> Result<&'a T, ConfigError> {
        table.ok_or_else(|| ConfigError::MissingSection {
            path: PathBuf::from(path),
            section: section.name(),
        })
    }
}

#[cfg(test)]
mod tests;
