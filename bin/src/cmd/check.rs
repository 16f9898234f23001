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
