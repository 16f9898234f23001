//! `stackd lab`: hands the options to the lab library with this executable.

use std::process::ExitCode;

use anyhow::Context;
use stackd_common::shutdown;
use stackd_lab::LabOptions;

use crate::cli::LabArgs;

pub async fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()
        .context("cannot find the stackd executable to start components with")?;
    let status_port = if args.port == 0 {
        0
    } else {
        args.port.saturating_add(1)
    };
    let opts = LabOptions {
        exe,
        port: args.port,
        status_port,
        netns: args.netns,
    };
    stackd_lab::run(opts, shutdown::shutdown_token()?).await?;
    Ok(ExitCode::SUCCESS)
}
