//! Loading one file: each table parsed and validated on its own, then the
//! problems sorted into what stops the caller and what is only a warning.
//!
//! A value that does not parse is read past ([`super::recover`]), so it
//! never hides the other problems of its table.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;

/// Every problem of one file, before deciding which ones stop the caller.
pub(super) struct Report {
    config: Config,
    ha_spec: Option<ha::HaSpec>,
    /// (table, problem); `None`: the file as a whole (syntax, unknown tables).
    errors: Vec<(Option<Section>, Problem)>,
    warnings: Vec<Problem>,
    /// Keys holding stand-ins for values that did not parse: validation
    /// findings at or below them are about the stand-in, not the file.
    swapped: Vec<KeyPath>,
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
    pub(super) fn of_file(path: &Path, only: Option<Section>) -> Result<Report, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut report = Report::of_text(&text, path, only, true)?;
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
    /// other tables' secret files are not opened; without `secrets`, none are
    /// (the file is another host's).
    pub(super) fn of_text(
        text: &str,
        origin: &Path,
        only: Option<Section>,
        secrets: bool,
    ) -> Result<Report, ConfigError> {
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
            swapped: Vec::new(),
        };
        report.known_tables(&top, &locator);
        report.config.proxy = report
            .table::<ProxyTable>(Section::Proxy, text, &locator)
            .and_then(|t| t.proxy);
        report.config.ha = report
            .table::<HaTable>(Section::Ha, text, &locator)
            .and_then(|t| t.ha);
        report.config.demo_backend = report
            .table::<DemoTable>(Section::DemoBackend, text, &locator)
            .and_then(|t| t.demo_backend);
        report.validate_tables(&locator, only, secrets);
        Ok(report)
    }

    /// One table's shape, with every value that does not parse noted as
    /// that table's error and read past.
    fn table<T: serde::de::DeserializeOwned>(
        &mut self,
        section: Section,
        text: &str,
        locator: &Locator<'_>,
    ) -> Option<T> {
        let read = recover::deserialize::<T>(text, locator);
        self.errors
            .extend(read.problems.into_iter().map(|p| (Some(section), p)));
        self.swapped.extend(read.swapped);
        read.config
    }

    /// Unknown top-level tables, and a file with none of ours.
    fn known_tables(&mut self, top: &toml::Table, locator: &Locator<'_>) {
        for key in top.keys() {
            if !Section::ALL.iter().any(|s| s.name() == key) {
                let f = Finding {
                    path: KeyPath::root(key),
                    message: format!(
                        "unknown table [{key}]; a file holds [proxy], [ha] and [demo_backend]"
                    ),
                };
                self.errors.push((None, locator.locate(&f)));
            }
        }
        if !Section::ALL.iter().any(|s| top.contains_key(s.name())) {
            let f = Finding {
                path: KeyPath::default(),
                message: "the file has none of the tables [proxy], [ha], [demo_backend]".into(),
            };
            self.errors.push((None, locator.locate(&f)));
        }
    }

    /// Each parsed table's semantic checks; `[ha]` yields its spec on the way.
    fn validate_tables(&mut self, locator: &Locator<'_>, only: Option<Section>, secrets: bool) {
        for s in Section::ALL {
            let mut f = Findings {
                skip_secret_files: !secrets || only.is_some_and(|o| o != s),
                ..Findings::default()
            };
            if s == Section::Ha {
                let at = KeyPath::root("ha");
                self.ha_spec = self.config.ha.as_ref().and_then(|h| h.spec_at(&at, &mut f));
            } else {
                self.config.validate_table(s, &mut f);
            }
            let swapped = &self.swapped;
            let real = f
                .errors
                .iter()
                .filter(|e| !swapped.iter().any(|k| e.path.starts_with(k)));
            let located: Vec<Problem> = real.map(|e| locator.locate(e)).collect();
            self.errors
                .extend(located.into_iter().map(|p| (Some(s), p)));
            self.warnings
                .extend(f.warnings.iter().map(|w| locator.locate(w)));
        }
    }

    /// Every error counts.
    pub(super) fn strict(self) -> Result<Loaded, ConfigError> {
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
    pub(super) fn only(self, origin: &Path, section: Section) -> Result<Loaded, ConfigError> {
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
