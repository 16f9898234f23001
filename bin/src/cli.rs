//! Command line: one binary, one subcommand per role.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stackd",
    version,
    about = "One binary for the HA web stack: reverse proxy (nginx), VRRP failover (keepalived) and shared sessions (Tomcat + Redis)",
    after_help = "Start with `stackd lab` to see the whole stack on this machine.\nEach subcommand reads its own table ([proxy], [ha], [demo_backend]) from a TOML file; `stackd check --config FILE` validates one."
)]
pub struct Cli {
    /// Log line format: human (colored on a terminal) or json (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormatArg::Human)]
    pub log_format: LogFormatArg,
    /// Log filter, e.g. "info", "debug" or "stackd_vrrp=debug,info". RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reverse proxy and load balancer (replaces nginx). Reads [proxy].
    ///
    /// SIGHUP reloads the file (a bad file is rejected and the old config keeps
    /// serving); SIGTERM drains in-flight requests, then exits.
    Proxy(ConfigArg),
    /// VRRP virtual-IP failover (replaces keepalived). Reads [ha]. Needs root or
    /// CAP_NET_ADMIN + CAP_NET_RAW.
    ///
    /// SIGTERM sends a priority-0 advertisement so the backup takes over at once,
    /// removes the virtual addresses, then exits.
    Ha(ConfigArg),
    /// Session-aware demo web app (replaces Tomcat + Redis session manager + index.jsp).
    ///
    /// Reads [demo_backend] from --config; the flags override single keys, or
    /// replace the file entirely when --node-id and --redis are both given.
    DemoBackend(DemoBackendArgs),
    /// Validates a config file: prints a summary and exits 0, or prints every
    /// problem as file:line:column and exits 64 (like `nginx -t`).
    Check(ConfigArg),
    /// Runs the whole stack on this machine: two demo backends, the proxy and
    /// Redis on loopback (or, with --netns, the five-host topology in network
    /// namespaces with VRRP failover). Ctrl-C stops everything it started.
    Lab(LabArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Path of the TOML config file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/stackd/stackd.toml"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoBackendArgs {
    /// Path of a TOML file with a [demo_backend] table.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Node id (Tomcat's jvmRoute), e.g. 137server1.
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Session store URL: redis://host:6379/, redis+sentinel://..., redis+cluster://..., memory://.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Session idle lifetime, e.g. 1800s or 30m.
    #[arg(long, value_name = "DURATION")]
    pub session_ttl: Option<String>,
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// Build the five-host topology in network namespaces (needs root) instead of loopback.
    #[arg(long)]
    pub netns: bool,
    /// Port for the proxy on loopback (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
}
