//! `stackd check`: every problem in one host's file, or in both proxy hosts'
//! files together, errors apart from warnings; exit 64 on an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use stackd_common::check::{self, host, Host};
use stackd_common::config::proxy::TlsCert;

use crate::EXIT_BAD_CONFIG;

/// This machine, for the rules only it can answer.
struct ThisHost;

impl Host for ThisHost {
    fn has_interface(&self, name: &str) -> bool {
        host::local_has_interface(name)
    }

    fn executable(&self, path: &Path) -> Result<(), String> {
        host::local_executable(path)
    }

    /// The proxy's own loader, so check and start agree on what loads.
    fn tls_pair(&self, cert: &TlsCert) -> Result<(), String> {
        stackd_proxy::check_tls(std::slice::from_ref(cert)).map_err(|e| e.kind.to_string())
    }
}

pub fn run(paths: &[PathBuf]) -> ExitCode {
    // With several files, they are other hosts' files: this machine's
    // interfaces and files say nothing about them.
    let host = (paths.len() == 1).then_some(&ThisHost as &dyn Host);
    let report = check::check_files(paths, host);
    if report.errors.is_empty() {
        for (path, summary) in &report.loaded {
            println!("{}: ok ({summary})", path.display());
        }
    }
    if host.is_none() {
        println!(
            "note: interfaces, notify programs and TLS files are checked only when one host's file is checked on that host"
        );
    }
    for e in &report.errors {
        eprintln!("{e}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let (e, w) = (report.errors.len(), report.warnings.len());
    if e > 0 {
        eprintln!("stackd check: {e} error(s), {w} warning(s): test failed");
        ExitCode::from(EXIT_BAD_CONFIG)
    } else {
        if w > 0 {
            eprintln!("stackd check: {w} warning(s), no errors: test is successful");
        }
        ExitCode::SUCCESS
    }
}

/// `stackd check --for ROLE`: the file as that subcommand loads it on
/// SIGHUP; exit 64 with every problem when it would be rejected.
pub fn run_for(paths: &[PathBuf], role: crate::cli::Role) -> ExitCode {
    use crate::cli::Role;
    let [path] = paths else {
        eprintln!("stackd check --for takes one file");
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    let outcome: Result<(), String> = match role {
        Role::Proxy => crate::load_proxy(path)
            .map_err(|e| e.to_string())
            .and_then(|(p, _)| {
                stackd_proxy::check_tls(&p.tls)
                    .map_err(|e| format!("{}: {}", path.display(), e.kind))
            }),
        Role::Ha => crate::load_ha(path).map(drop).map_err(|e| format!("{e:#}")),
        Role::DemoBackend => {
            let section = stackd_common::config::Section::DemoBackend;
            crate::load_for(path, section)
                .and_then(|l| {
                    stackd_common::Config::require(path, section, l.config.demo_backend.as_ref())
                        .map(drop)
                })
                .map_err(|e| e.to_string())
        }
    };
    match outcome {
        Ok(()) => {
            println!("{}: ok for stackd {}", path.display(), role_name(role));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

fn role_name(role: crate::cli::Role) -> &'static str {
    match role {
        crate::cli::Role::Proxy => "proxy",
        crate::cli::Role::Ha => "ha",
        crate::cli::Role::DemoBackend => "demo-backend",
    }
}
