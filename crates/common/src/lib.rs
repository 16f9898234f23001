//! What every stackd service shares: the config file, its errors, logging,
//! process signals and the admin HTTP server.
//!
//! # Layout
//! - [`config`]: the TOML file, two-stage (serde shape, then `validate`), with
//!   file:line:column problems.
//! - [`error`]: the config error type, [`ConfigError`].
//! - [`telemetry`]: `tracing` subscriber setup (human or JSON).
//! - [`shutdown`]: SIGTERM/SIGINT as a `CancellationToken`, SIGHUP as a stream.
//! - [`admin`]: `/healthz`, `/status`, `/metrics` and extra pages.
//! - [`http_client`]: the one outbound HTTP(S) client (tracking, webhooks, probes).

pub mod admin;
pub mod config;
pub mod error;
pub mod http_client;
pub mod shutdown;
pub mod telemetry;

pub use config::Config;
pub use error::ConfigError;
pub use tokio_util::sync::CancellationToken;
