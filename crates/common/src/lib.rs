//! What every stackd service shares: the config file, its errors, logging,
//! process signals and the admin HTTP server.
//!
//! # Layout
//! - [`check`]: `stackd check`'s rules across tables and hosts.
//! - [`config`]: the TOML file, two-stage (serde shape, then `validate`), with
//!   file:line:column problems.
//! - [`error`]: the config error type, [`ConfigError`].
//! - [`telemetry`]: `tracing` subscriber setup (human or JSON).
//! - [`shutdown`]: SIGTERM/SIGINT as a `CancellationToken`; SIGHUP, SIGUSR1, SIGUSR2 as streams.
//! - [`systemd`]: sd_notify (ready, reloading, stopping, watchdog) and LISTEN_FDS.
//! - [`upgrade`]: start a successor with our listening sockets (SIGUSR2).
//! - [`admin`]: `/healthz`, `/status`, `/metrics` and extra pages.
//! - [`live`]: the live page served at `/` of every admin listener and by the lab.
//! - [`logfile`]: an append-only log file reopened on SIGUSR1 (logrotate).
//! - [`metrics`]: `stackd_build_info` and `process_*`, on every `/metrics`.
//! - [`http_client`]: the one outbound HTTP(S) client (tracking, webhooks, probes).

pub mod admin;
pub mod check;
pub mod config;
pub mod error;
pub mod http_client;
pub mod live;
pub mod logfile;
pub mod metrics;
pub mod shutdown;
pub mod systemd;
pub mod tcp;
pub mod telemetry;
pub mod tls_stream;
pub mod upgrade;

pub use config::Config;
pub use error::ConfigError;
pub use tokio_util::sync::CancellationToken;
