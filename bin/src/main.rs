//! `stackd`: parse the command line, set up logging, load the config, hand it
//! to the library that runs the role, and turn the outcome into an exit code.
//! Nothing else lives here.

mod admin_client;
mod cli;
mod cmd;
mod demo_args;
mod lab;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use stackd_common::config::{Loaded, Section};
use stackd_common::metrics::{set_build_info, BuildInfo};
use stackd_common::telemetry::{self, LogFormat};
use stackd_common::{shutdown, systemd, Config, ConfigError};
use tokio::sync::mpsc;

use cli::{Cli, Command, LogFormatArg};

/// Exit code for a config the user must fix (sysexits EX_USAGE, as STYLE.md asks).
pub const EXIT_BAD_CONFIG: u8 = 64;

fn main() -> ExitCode {
    set_build_info(BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("STACKD_COMMIT"),
        date: env!("STACKD_BUILD_DATE"),
    });
    let cli = Cli::parse();
    // Sockets passed in (systemd, or the old process of an upgrade) are
    // taken while this process has one thread: it edits the environment.
    let inherited = match &cli.command {
        Command::Proxy(_) => Some(stackd_common::upgrade::take_inherited()),
        _ => None,
    };
    let format = match cli.log_format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    };
    if let Err(e) = telemetry::init(format, &cli.log_level) {
        telemetry::eprint_error(&format!("stackd: {e}"));
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            telemetry::eprint_error(&format!("stackd: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(dispatch(cli.command, inherited));
    // A blocking read of stdin (the lab's prompt) never ends by itself;
    // dropping the runtime would wait for it after Ctrl-C.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            if let Some(cfg) = e.downcast_ref::<ConfigError>() {
                telemetry::eprint_error(&cfg.to_string());
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            telemetry::eprint_error(&format!("stackd: {}", chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// What [`stackd_common::upgrade::take_inherited`] found.
type Inherited = (
    Vec<stackd_common::systemd::Inherited>,
    Option<stackd_common::upgrade::Ready>,
    Vec<String>,
);

async fn dispatch(command: Command, inherited: Option<Inherited>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check(a) => {
            return Ok(match a.for_role {
                Some(role) => cmd::check::run_for(&a.config, role),
                None => cmd::check::run(&a.config),
            })
        }
        Command::Status(a) => return cmd::status::run(&a).await,
        Command::Ctl(a) => return cmd::ctl::run(&a).await,
        Command::Completions { shell } => cmd::docs::completions(shell),
        Command::Manpages { dir } => cmd::docs::manpages(&dir)?,
        Command::Proxy(a) => {
            drain_reopens()?;
            let (sockets, ready, errors) = inherited.unwrap_or_default();
            for e in errors {
                tracing::warn!("{e}");
            }
            let (proxy, drain_vips) = load_proxy(&a.config)?;
            let mut control = stackd_proxy::Control::new(shutdown::shutdown_token()?);
            control.upgrades = Some(shutdown::upgrade_requests()?);
            control.inherited = sockets.into_iter().map(|s| s.listener).collect();
            control.ready = ready;
            control.drain_vips = drain_vips;
            let reloads = proxy_reloads(a.config.clone())?;
            stackd_proxy::run_with(proxy, reloads, control)
                .await
                .context("proxy")?;
        }
        Command::Ha(a) => {
            shutdown::ignore(
                shutdown::Kind::user_defined2(),
                "SIGUSR2: binary upgrades are for stackd proxy; ignored",
            )?;
            let spec = load_ha(&a.config)?;
            let inputs = stackd_vrrp::Inputs {
                shutdown: shutdown::shutdown_token()?,
                reloads: ha_reloads(a.config.clone())?,
                // SIGUSR1: ha reopens its log files and dumps its state.
                dumps: shutdown::reopen_requests()?,
            };
            stackd_vrrp::run_with(spec, inputs).await.context("ha")?;
        }
        Command::DemoBackend(a) => {
            drain_reopens()?;
            shutdown::ignore(
                shutdown::Kind::user_defined2(),
                "SIGUSR2: binary upgrades are for stackd proxy; ignored",
            )?;
            shutdown::ignore(
                shutdown::Kind::hangup(),
                "SIGHUP: demo-backend takes config changes on restart; ignored",
            )?;
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

/// An error and its causes on one line, each said once. Library errors often
/// repeat their source in their own message ("cannot listen on X: E" caused
/// by "E"), and a context may be the start of the next message
/// ("proxy" then "proxy: cannot listen ..."); printing every link verbatim
/// said the same thing three times.
fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        let so_far = parts.join(": ");
        if so_far.contains(&msg) {
            continue;
        }
        match parts.last_mut() {
            Some(last) if msg.starts_with(&format!("{last}: ")) => *last = msg,
            _ => parts.push(msg),
        }
    }
    parts.join(": ")
}

/// SIGUSR1 reopens every log file the process writes (logrotate's
/// `postrotate`, as for nginx), and never kills it.
fn drain_reopens() -> anyhow::Result<()> {
    let mut usr1 = shutdown::reopen_requests()?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            for (path, e) in stackd_common::logfile::reopen_all() {
                tracing::error!(path = %path.display(), error = %e, "cannot reopen the log file; still writing to the old one");
            }
        }
    });
    Ok(())
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
            systemd::reloading();
            match load_section(&path) {
                Ok(p) => {
                    if tx.send(p).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!("reload rejected, keeping the running config:\n{e}");
                    systemd::reloaded(false, "reload rejected: the file has errors (see the log)");
                }
            }
        }
    });
    Ok(rx)
}

pub(crate) fn load_ha(path: &Path) -> anyhow::Result<stackd_vrrp::HaSpec> {
    let loaded = load_for(path, Section::Ha)?;
    loaded
        .ha_spec
        .context("internal: [ha] validated without a spec")
}

/// On each SIGHUP, re-reads `path` and forwards a valid `[ha]`; a bad file
/// is logged with every problem and the running instances stay as they are.
fn ha_reloads(path: std::path::PathBuf) -> anyhow::Result<mpsc::Receiver<stackd_vrrp::HaSpec>> {
    let mut hups = shutdown::reload_requests()?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while hups.recv().await.is_some() {
            systemd::reloading();
            match load_ha(&path) {
                Ok(spec) => {
                    if tx.send(spec).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "reload rejected, keeping the running instances:\n{}",
                        chain(&e)
                    );
                    systemd::reloaded(false, "reload rejected: the file has errors (see the log)");
                }
            }
        }
    });
    Ok(rx)
}

/// `[proxy]`, and the `[ha]` virtual addresses of the same file: while one
/// of them is on this host at SIGTERM, the proxy keeps serving (draining)
/// until `stackd ha` has handed it over.
pub(crate) fn load_proxy(
    path: &Path,
) -> Result<(stackd_common::config::ProxyConfig, Vec<std::net::IpAddr>), ConfigError> {
    let loaded = load_for(path, Section::Proxy)?;
    let vips = loaded
        .config
        .ha
        .iter()
        .flat_map(|h| &h.instance)
        .flat_map(|i| i.virtual_ipaddress.iter().map(|n| n.addr()))
        .collect();
    let proxy = Config::require(path, Section::Proxy, loaded.config.proxy.as_ref()).cloned()?;
    Ok((proxy, vips))
}

fn load_section(path: &Path) -> Result<stackd_common::config::ProxyConfig, ConfigError> {
    load_proxy(path).map(|(p, _)| p)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        #[derive(Debug)]
        struct Listen(std::io::Error);
        impl std::fmt::Display for Listen {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "proxy: cannot listen on 127.0.0.1:1: {}", self.0)
            }
        }
        impl std::error::Error for Listen {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Listen(io)).context("proxy");
        assert_eq!(
            chain(&e),
            "proxy: cannot listen on 127.0.0.1:1: Address already in use"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain(&e), "outer: inner");
    }
}
