//! `stackd lab`: the whole stack on this machine.

use std::process::ExitCode;

use crate::cli::LabArgs;

pub async fn run(_args: LabArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("stackd lab is being built (issue 7)")
}
