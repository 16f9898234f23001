//! Shell completions and man pages, generated from the same clap definition
//! the binary parses with, so they always match the options it takes.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// `stackd completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "stackd", &mut std::io::stdout());
}

/// Writes stackd(1), stackd-SUBCOMMAND(1) for every visible subcommand, and
/// stackd.toml(5) into `dir`.
pub fn manpages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let date = env!("STACKD_BUILD_DATE");
    let source = format!("stackd {}", env!("CARGO_PKG_VERSION"));
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let page = |c: clap::Command| {
        clap_mangen::Man::new(c)
            .date(date)
            .source(source.clone())
            .manual("stackd Manual")
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub.clone())
            .generate_to(dir)
            .with_context(|| format!("write the man page of {}", sub.get_name()))?;
    }
    page(cmd.clone())
        .generate_to(dir)
        .context("write stackd(1)")?;
    let conf = super::roff::config_page(env!("CARGO_PKG_VERSION"), date);
    let path = dir.join("stackd.toml.5");
    std::fs::write(&path, conf).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
