//! `stackd check` across tables and hosts: the mistakes no single table shows.
//!
//! Each table's own rules live with the table (`config::*::validate`). The
//! rules here read several tables, or both proxy hosts' files at once, and
//! show their arithmetic, because "the VIP never moves" is only believable
//! with the numbers next to it. Problems are [`Severity::Error`] (the service
//! would not start, or would not do its job) or [`Severity::Warning`] (it
//! runs, but not as the operator probably meant); `stackd check` exits 64
//! only for errors.
//!
//! # Layout
//! - [`vrrp`]: timer arithmetic (Skew_Time, Master_Down_Interval) and the
//!   rules that use it: track weights, failover time against the proxy's
//!   timeouts and the session TTL, VRIDs sharing an interface.
//! - [`local`]: a host's `[ha]` tracking its own `[proxy]`.
//! - [`host`]: what only the machine can answer (interfaces, notify
//!   programs, TLS files), behind the [`Host`] trait.

pub mod host;
pub mod local;
pub mod vrrp;

use std::path::PathBuf;

pub use host::Host;

use crate::config::{Config, Finding, KeyPath, Loaded, Locator};
use crate::ConfigError;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The service would refuse to start or could not do its job.
    Error,
    /// It runs, but probably not as meant.
    Warning,
}

/// One loaded host file.
#[derive(Debug)]
pub struct HostFile {
    pub path: PathBuf,
    pub config: Config,
}

/// A cross-table finding in file `file` (index into the checked files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub file: usize,
    pub finding: Finding,
}

impl Issue {
    pub(crate) fn error(file: usize, path: KeyPath, message: String) -> Issue {
        Issue {
            severity: Severity::Error,
            file,
            finding: Finding { path, message },
        }
    }

    pub(crate) fn warning(file: usize, path: KeyPath, message: String) -> Issue {
        Issue {
            severity: Severity::Warning,
            file,
            finding: Finding { path, message },
        }
    }
}

/// What `stackd check` prints: errors and warnings apart, each a
/// `file:line:column: key: message` line.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The files that loaded, with their summary line.
    pub loaded: Vec<(PathBuf, String)>,
}

/// Reads, validates and cross-checks `paths` (one host's file, or both proxy
/// hosts'). `host` answers questions about this machine; pass `None` when the
/// files belong to other machines.
pub fn check_files(paths: &[PathBuf], host: Option<&dyn Host>) -> Report {
    let mut report = Report::default();
    let mut texts = Vec::new();
    let mut files = Vec::new();
    // One file is this host's: its secret files are opened, and a
    // world-readable one is a warning. Several files are other hosts'.
    let this_host = paths.len() == 1;
    for path in paths {
        let loaded = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })
            .and_then(|text| {
                let loaded = if this_host {
                    Config::check(path)?
                } else {
                    Config::check_other_host(&text, path)?
                };
                Ok((text, loaded))
            });
        match loaded {
            Ok((
                text,
                Loaded {
                    config, warnings, ..
                },
            )) => {
                report
                    .warnings
                    .extend(warnings.iter().map(ToString::to_string));
                report.loaded.push((path.clone(), config.summary()));
                texts.push(text);
                files.push(HostFile {
                    path: path.clone(),
                    config,
                });
            }
            Err(ConfigError::Invalid(p)) => report.errors.extend(p.iter().map(ToString::to_string)),
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    for issue in rules(&files, host) {
        let file = &files[issue.file];
        let p = Locator::new(&file.path, &texts[issue.file])
            .locate(&issue.finding)
            .to_string();
        match issue.severity {
            Severity::Error => report.errors.push(p),
            Severity::Warning => report.warnings.push(p),
        }
    }
    report
}

/// Every cross-table and cross-host rule over files that loaded.
pub fn rules(files: &[HostFile], host: Option<&dyn Host>) -> Vec<Issue> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        local::track_follows_proxy(i, &f.config, &mut out);
        vrrp::vrids_share_interface(i, &f.config, &mut out);
        vrrp::failover_within_proxy_timeouts(i, &f.config, &mut out);
        if let Some(h) = host {
            host::check(i, &f.config, h, &mut out);
        }
    }
    vrrp::session_outlives_failover(files, &mut out);
    for (a, fa) in files.iter().enumerate() {
        for (b, fb) in files.iter().enumerate() {
            if a != b {
                vrrp::weights_move_the_vip(a, &fa.config, b, &fb.config, &fb.path, &mut out);
            }
        }
    }
    out
}
