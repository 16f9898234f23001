//! `stackd`: parse the command line, set up logging, load the config, hand it
//! to the library that runs the role, and turn the outcome into an exit code.
//! Nothing else lives here.

mod cli;
mod demo_args;
mod lab;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use stackd_common::config::{Loaded, Section};
use stackd_common::telemetry::{self, LogFormat};
use stackd_common::{shutdown, Config, ConfigError};
use tokio::sync::mpsc;

use cli::{Cli, Command, LogFormatArg};

/// Exit code for a config the user must fix (sysexits EX_USAGE, as STYLE.md asks).
const EXIT_BAD_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match cli.log_format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    };
    if let Err(e) = telemetry::init(format, &cli.log_level) {
        eprintln!("stackd: {e}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stackd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(cfg) = e.downcast_ref::<ConfigError>() {
                eprintln!("{cfg}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            eprintln!("stackd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check(a) => {
            let loaded = Config::check(&a.config)?;
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: ok ({})", a.config.display(), loaded.config.summary());
        }
        Command::Proxy(a) => {
            let proxy = load_section(&a.config)?;
            let shutdown = shutdown::shutdown_token()?;
            let reloads = proxy_reloads(a.config.clone())?;
            stackd_proxy::run(proxy, reloads, shutdown)
                .await
                .context("proxy")?;
        }
        Command::Ha(a) => {
            let loaded = load_for(&a.config, Section::Ha)?;
            let spec = loaded
                .ha_spec
                .context("internal: [ha] validated without a spec")?;
            let shutdown = shutdown::shutdown_token()?;
            stackd_vrrp::run(spec, shutdown).await.context("ha")?;
        }
        Command::DemoBackend(a) => {
            let cfg = demo_args::resolve(&a)?;
            let shutdown = shutdown::shutdown_token()?;
            stackd_session::demo::run(cfg, shutdown)
                .await
                .context("demo-backend")?;
        }
        Command::Lab(a) => return lab::run(a).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// On each SIGHUP, re-reads `path` and forwards a valid `[proxy]` table; a bad
/// file is logged with every problem and the running config stays.
fn proxy_reloads(
    path: std::path::PathBuf,
) -> anyhow::Result<mpsc::Receiver<stackd_common::config::ProxyConfig>> {
    let mut hups = shutdown::reload_requests()?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while hups.recv().await.is_some() {
            match load_section(&path) {
                Ok(p) => {
                    if tx.send(p).await.is_err() {
                        break;
                    }
                }
                Err(e) => tracing::error!("reload rejected, keeping the running config:\n{e}"),
            }
        }
    });
    Ok(rx)
}

fn load_section(path: &Path) -> Result<stackd_common::config::ProxyConfig, ConfigError> {
    let loaded = load_for(path, Section::Proxy)?;
    Config::require(path, Section::Proxy, loaded.config.proxy.as_ref()).cloned()
}

/// Loads `path` for one subcommand: only its table must be right; what is
/// wrong elsewhere (another service's table) is logged as a warning.
pub(crate) fn load_for(path: &Path, section: Section) -> Result<Loaded, ConfigError> {
    let loaded = Config::load_for(path, section)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded)
}
