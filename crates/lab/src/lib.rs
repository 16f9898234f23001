//! `stackd lab`: the whole stack on one machine, so a person can see the
//! product work in a minute and a test can drive the same thing.
//!
//! Every component is the real `stackd` binary (or a real `redis-server`)
//! started as a child process, exactly as on the five hosts; the lab only
//! wires them together, watches them, and stops what it started.
//!
//! # Layout
//! - `netns_lab`: `--netns` mode: the five hosts with VRRP failover.
//! - `local`: loopback mode: Redis, two demo backends, the proxy.
//! - [`five_hosts`]: the SPEC.md topology in network namespaces (for `--netns` and tests).
//! - `backends`: the demo backends as processes, or in-process on a memory store.
//! - `procs`: child processes by PID, logs in the lab directory, stop on exit.
//! - `redis`: a throwaway `redis-server` on a free port.
//! - `probe`: bounded HTTP GET / Redis PING used for readiness and status.
//! - `page`: the live page (the shared one from `stackd_common::live`) and its data.
//! - `history`: rates per backend and the VIP timeline the page draws.
//! - `client_probe`: the client's view of a failover, from inside its namespace.
//! - `proxy_toml`: the `[proxy]` table both lab modes run.

mod backends;
mod client_probe;
pub mod five_hosts;
mod history;
mod local;
mod netns_lab;
mod notify;
mod page;
mod probe;
mod procs;
mod proxy_toml;
mod redis;

use std::path::PathBuf;

use stackd_common::CancellationToken;

/// What `stackd lab` was asked to run.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// The `stackd` executable to start components with.
    pub exe: PathBuf,
    /// Proxy port on loopback; 0 picks a free one.
    pub port: u16,
    /// Status page port; 0 picks a free one.
    pub status_port: u16,
    /// Build the five hosts in network namespaces instead of loopback.
    pub netns: bool,
}

/// Why the lab could not run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Start(String),
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> LabError {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Runs the lab until `shutdown`.
pub async fn run(opts: LabOptions, shutdown: CancellationToken) -> Result<(), LabError> {
    if opts.netns {
        netns_lab::run(&opts, shutdown).await
    } else {
        local::run(&opts, shutdown).await
    }
}
