//! The stackd config file: one TOML file per host, one table per subcommand.
//!
//! Loading is two steps. Serde reads each table into structs that mirror its
//! shape (`deny_unknown_fields`, typed addresses, durations with units); a
//! type error stops that table with its position. Then each table's
//! `validate` checks what types cannot express (references, ranges,
//! combinations, bounds on what sizes runtime work) and reports *every*
//! finding at once, each located by [`diag::Locator`]. `[ha]` goes one step
//! further: validation *is* the conversion into its typed spec
//! ([`ha::spec`]), so the runtime never re-checks it.
//!
//! Tables are parsed independently because one file serves several
//! services: [`Config::load_for`] fails only on the caller's table and turns
//! the others' problems into warnings; [`Config::check`] (`stackd check`)
//! fails on all of them.
//!
//! # Layout
//! - `units`: durations and byte sizes as people write them.
//! - `diag`: key paths and file:line:column problems.
//! - `recover`: reading past a value that does not parse.
//! - [`secret`]: passwords that never print, `*_file` keys, URL redaction.
//! - [`proxy`], [`ha`], [`demo_backend`]: one module per table.

pub mod demo_backend;
mod diag;
pub mod ha;
mod load;
pub mod proxy;
mod recover;
pub mod secret;
pub(crate) mod units;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use demo_backend::DemoBackendConfig;
pub use diag::{Finding, Findings, KeyPath, Locator, Problem};
pub use ha::HaConfig;
pub use proxy::ProxyConfig;
pub use secret::{redact_url, Secret};
pub use units::{format_duration, parse_duration, AutoCount, ByteSize};

use crate::error::ConfigError;
use load::Report;

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

/// A file that can be used, with what is wrong or risky in it.
#[derive(Debug)]
pub struct Loaded {
    /// The tables that were read. In [`Config::load_for`], a table of another
    /// subcommand that has errors is left out (`None`).
    pub config: Config,
    /// To log at start (or print after `stackd check`): warnings, and for
    /// [`Config::load_for`] the other tables' errors.
    pub warnings: Vec<Problem>,
    /// `[ha]` as `stackd ha` runs it, built while validating it.
    pub ha_spec: Option<ha::HaSpec>,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Proxy, Section::Ha, Section::DemoBackend];

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
    /// Reads and validates `path`, every table strictly (tests, tools).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::check(path).map(|l| l.config)
    }

    /// `stackd check`: every problem in every table is an error; what is
    /// merely risky (a world-readable secret) comes back as warnings.
    pub fn check(path: &Path) -> Result<Loaded, ConfigError> {
        Report::of_file(path, None)?.strict()
    }

    /// What a subcommand loads: only `section` must be right. Errors in the
    /// other tables become warnings, so a typo in `[proxy]` cannot stop
    /// `stackd ha` (one file per host holds both).
    pub fn load_for(path: &Path, section: Section) -> Result<Loaded, ConfigError> {
        Report::of_file(path, Some(section))?.only(path, section)
    }

    /// Parses and validates `text` strictly; `origin` names the file in messages.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Report::of_text(text, origin, None, true)?
            .strict()
            .map(|l| l.config)
    }

    /// `stackd check` of another host's file (`text`, read from `origin`):
    /// strict, but its secret files (`*_file` keys) are that host's and are
    /// not opened here.
    pub fn check_other_host(text: &str, origin: &Path) -> Result<Loaded, ConfigError> {
        Report::of_text(text, origin, None, false)?.strict()
    }

    /// [`Config::load_for`] on text.
    pub fn from_toml_str_for(
        text: &str,
        origin: &Path,
        section: Section,
    ) -> Result<Loaded, ConfigError> {
        Report::of_text(text, origin, Some(section), true)?.only(origin, section)
    }

    fn validate_table(&self, section: Section, out: &mut Findings) {
        let at = KeyPath::root(section.name());
        match section {
            Section::Proxy => self.proxy.iter().for_each(|p| p.validate(&at, out)),
            Section::Ha => self.ha.iter().for_each(|h| h.validate(&at, out)),
            Section::DemoBackend => self.demo_backend.iter().for_each(|d| d.validate(&at, out)),
        }
    }

    /// Keys of this config that hold a secret inline (for the file-mode warning).
    fn inline_secrets(&self) -> Vec<KeyPath> {
        let mut keys = Vec::new();
        if let Some(h) = &self.ha {
            for (i, inst) in h.instance.iter().enumerate() {
                if inst.auth_pass.is_some() {
                    keys.push(
                        KeyPath::root("ha")
                            .key("instance")
                            .index(i)
                            .key("auth_pass"),
                    );
                }
            }
        }
        if let Some(d) = &self.demo_backend {
            if secret::url_has_password(&d.redis) {
                keys.push(KeyPath::root("demo_backend").key("redis"));
            }
        }
        keys
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
