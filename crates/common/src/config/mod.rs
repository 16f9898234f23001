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
//! - [`units`]: durations and byte sizes as people write them.
//! - [`diag`]: key paths and file:line:column problems.
//! - [`secret`]: passwords that never print, `*_file` keys, URL redaction.
//! - [`proxy`], [`ha`], [`demo_backend`]: one module per table.

pub mod demo_backend;
pub mod diag;
pub mod ha;
pub mod proxy;
pub mod secret;
pub mod units;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use demo_backend::DemoBackendConfig;
pub use diag::{Finding, Findings, KeyPath, Locator, Problem};
pub use ha::HaConfig;
pub use proxy::ProxyConfig;
pub use secret::{redact_url, Secret};
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

/// Every problem of one file, before deciding which ones stop the caller.
struct Report {
    config: Config,
    ha_spec: Option<ha::HaSpec>,
    /// (table, problem); `None`: the file as a whole (syntax, unknown tables).
    errors: Vec<(Option<Section>, Problem)>,
    warnings: Vec<Problem>,
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
        Report::of_text(text, origin, None)?
            .strict()
            .map(|l| l.config)
    }

    /// [`Config::load_for`] on text.
    pub fn from_toml_str_for(
        text: &str,
        origin: &Path,
        section: Section,
    ) -> Result<Loaded, ConfigError> {
        Report::of_text(text, origin, Some(section))?.only(origin, section)
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

// === impl Report ===

/// `[proxy]` alone, ignoring the rest of the file: so one table's serde
/// error (a typo under `deny_unknown_fields`) stays that table's problem.
#[derive(Deserialize)]
struct ProxyTable {
    #[serde(default)]
    proxy: Option<ProxyConfig>,
}

#[derive(Deserialize)]
struct HaTable {
    #[serde(default)]
    ha: Option<HaConfig>,
}

#[derive(Deserialize)]
struct DemoTable {
    #[serde(default)]
    demo_backend: Option<DemoBackendConfig>,
}

impl Report {
    fn of_file(path: &Path, only: Option<Section>) -> Result<Report, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut report = Report::of_text(&text, path, only)?;
        if let Some(mode) = secret::world_readable(path) {
            let locator = Locator::new(path, &text);
            for key in report.config.inline_secrets() {
                report.warnings.push(locator.locate(&Finding {
                    path: key,
                    message: format!(
                        "a password in a file every user can read (mode {mode:04o}); chmod o-r the file or move the password to a *_file key"
                    ),
                }));
            }
        }
        Ok(report)
    }

    /// Parses each table on its own, then validates each. Only a TOML syntax
    /// error stops everything (nothing can be read at all). With `only`, the
    /// other tables' secret files are not opened.
    fn of_text(text: &str, origin: &Path, only: Option<Section>) -> Result<Report, ConfigError> {
        let locator = Locator::new(origin, text);
        let serde_problem = |e: toml::de::Error| {
            let key = e
                .span()
                .map(|s| locator.path_at(s.start).to_string())
                .unwrap_or_default();
            locator.at_span(e.span(), key, e.message().trim().to_owned())
        };
        let top: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(vec![serde_problem(e)]))?;
        let mut report = Report {
            config: Config::default(),
            ha_spec: None,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        for key in top.keys() {
            if !Section::ALL.iter().any(|s| s.name() == key) {
                let f = Finding {
                    path: KeyPath::root(key),
                    message: format!(
                        "unknown table [{key}]; a file holds [proxy], [ha] and [demo_backend]"
                    ),
                };
                report.errors.push((None, locator.locate(&f)));
            }
        }
        match toml::from_str::<ProxyTable>(text) {
            Ok(t) => report.config.proxy = t.proxy,
            Err(e) => report.errors.push((Some(Section::Proxy), serde_problem(e))),
        }
        match toml::from_str::<HaTable>(text) {
            Ok(t) => report.config.ha = t.ha,
            Err(e) => report.errors.push((Some(Section::Ha), serde_problem(e))),
        }
        match toml::from_str::<DemoTable>(text) {
            Ok(t) => report.config.demo_backend = t.demo_backend,
            Err(e) => report
                .errors
                .push((Some(Section::DemoBackend), serde_problem(e))),
        }
        if !Section::ALL.iter().any(|s| top.contains_key(s.name())) {
            let f = Finding {
                path: KeyPath::default(),
                message: "the file has none of the tables [proxy], [ha], [demo_backend]".into(),
            };
            report.errors.push((None, locator.locate(&f)));
        }
        for s in Section::ALL {
            let mut f = Findings {
                skip_secret_files: only.is_some_and(|o| o != s),
                ..Findings::default()
            };
            if s == Section::Ha {
                let at = KeyPath::root("ha");
                report.ha_spec = report
                    .config
                    .ha
                    .as_ref()
                    .and_then(|h| h.spec_at(&at, &mut f));
            } else {
                report.config.validate_table(s, &mut f);
            }
            for e in &f.errors {
                report.errors.push((Some(s), locator.locate(e)));
            }
            report
                .warnings
                .extend(f.warnings.iter().map(|w| locator.locate(w)));
        }
        Ok(report)
    }

    /// Every error counts.
    fn strict(self) -> Result<Loaded, ConfigError> {
        if !self.errors.is_empty() {
            return Err(invalid(self.errors.into_iter().map(|(_, p)| p).collect()));
        }
        Ok(Loaded {
            config: self.config,
            warnings: sorted(self.warnings),
            ha_spec: self.ha_spec,
        })
    }

    /// Only `section`'s errors count; the rest become warnings.
    fn only(self, origin: &Path, section: Section) -> Result<Loaded, ConfigError> {
        let (mine, others): (Vec<_>, Vec<_>) = self
            .errors
            .into_iter()
            .partition(|(s, _)| *s == Some(section));
        if !mine.is_empty() {
            return Err(invalid(mine.into_iter().map(|(_, p)| p).collect()));
        }
        let mut config = self.config;
        let present = match section {
            Section::Proxy => config.proxy.is_some(),
            Section::Ha => config.ha.is_some(),
            Section::DemoBackend => config.demo_backend.is_some(),
        };
        if !present {
            return Err(ConfigError::MissingSection {
                path: PathBuf::from(origin),
                section: section.name(),
            });
        }
        // A table with errors is not handed to anyone.
        for s in others.iter().filter_map(|(s, _)| *s) {
            match s {
                Section::Proxy => config.proxy = None,
                Section::Ha => config.ha = None,
                Section::DemoBackend => config.demo_backend = None,
            }
        }
        let ha_spec = self.ha_spec.filter(|_| section == Section::Ha);
        let mut warnings = self.warnings;
        warnings.extend(others.into_iter().map(|(_, p)| p));
        Ok(Loaded {
            config,
            warnings: sorted(warnings),
            ha_spec,
        })
    }
}

fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| (p.line, p.column));
    problems
}

fn invalid(problems: Vec<Problem>) -> ConfigError {
    ConfigError::Invalid(sorted(problems))
}

#[cfg(test)]
mod tests;
