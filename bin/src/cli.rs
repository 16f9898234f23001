//! Command line: one binary, one subcommand per role.
//!
//! The doc comments here are clap's `--help` text and the man pages, read
//! by operators: `[proxy]` names a TOML table there, not a Rust item.
#![allow(rustdoc::broken_intra_doc_links)]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `stackd --version`: the crate version, the git commit and the build date
/// (from build.rs), so a bug report names the exact build.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STACKD_COMMIT"),
    ", built ",
    env!("STACKD_BUILD_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "stackd",
    version = LONG_VERSION,
    about = "One binary for the HA web stack: reverse proxy (nginx), VRRP failover (keepalived) and shared sessions (Tomcat + Redis)",
    after_help = "Start with `stackd lab` to see the whole stack on this machine.\nEach subcommand reads its own table ([proxy], [ha], [demo_backend]) from a TOML file (stackd.toml(5)); `stackd check --config FILE` validates one."
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
    /// Validates one host's file, or both proxy hosts' files together (like `nginx -t`).
    ///
    /// Checks each table, then what spans tables and hosts: track weights that
    /// cannot move the VIP given both nodes' priorities, tracks that do not
    /// follow this host's proxy, failover time against the proxy's timeouts and
    /// the session TTL, VRIDs sharing an interface, and, for one file, this
    /// machine's interfaces, notify programs and TLS files. Every problem is
    /// printed as file:line:column, errors apart from warnings.
    ///
    /// Exit status: 0 when there is no error (warnings are printed on stderr),
    /// 64 when a file has an error or cannot be read.
    Check(CheckArgs),
    /// Prints the host's state from the admin listeners named in its file.
    ///
    /// Each VRRP instance's state, effective priority and track results; who
    /// holds the VIP; each upstream server's health, connections and failures;
    /// whether the session store answers.
    ///
    /// Exit status: 0 when everything is up, 1 when something is down or an
    /// admin listener does not answer, 64 when the file is unusable.
    Status(StatusArgs),
    /// Maintenance of one upstream server on the running proxy, without
    /// editing the config (HAProxy's runtime API).
    ///
    /// drain: no new requests, in-flight ones finish. disable: drain and stop
    /// its health checks. enable: back in rotation. Sent to the proxy's admin
    /// listener, which takes these calls only from loopback. The state lasts
    /// until enable, a reload that drops the server, or a restart.
    ///
    /// Exit status: 0 done, 1 refused or proxy unreachable, 64 unusable file.
    Ctl(CtlArgs),
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: stackd completions bash > /etc/bash_completion.d/stackd
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Runs the whole stack on this machine: two demo backends, the proxy and
    /// Redis on loopback (or, with --netns, the five-host topology in network
    /// namespaces with VRRP failover). Ctrl-C stops everything it started.
    Lab(LabArgs),
    /// Writes the man pages (stackd(1), one per subcommand, stackd.toml(5)) to DIR.
    #[command(hide = true)]
    Manpages {
        /// Directory to write the pages into.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A host's TOML file; give it twice (px1.toml, px2.toml) to check both
    /// proxy hosts together.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/stackd/stackd.toml",
        action = clap::ArgAction::Append
    )]
    pub config: Vec<PathBuf>,
    /// Check only what this subcommand loads, exactly as it loads it on
    /// SIGHUP (the units' ExecReload runs this first, so `systemctl reload`
    /// fails, with every problem, when the new file would be rejected).
    #[arg(long = "for", value_enum, value_name = "SUBCOMMAND")]
    pub for_role: Option<Role>,
}

/// A long-running subcommand, for `stackd check --for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Proxy,
    Ha,
    DemoBackend,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The host's TOML file: its [proxy] and [ha] admin addresses are asked.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/stackd/stackd.toml"
    )]
    pub config: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The host's TOML file: its [proxy] admin address is used.
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "/etc/stackd/stackd.toml"
    )]
    pub config: PathBuf,
    /// What to do with the server.
    #[arg(value_enum)]
    pub action: CtlAction,
    /// The upstream's name ([[proxy.upstream]] name).
    pub upstream: String,
    /// The server's address as written in the config, e.g. 192.0.2.137:8080.
    pub server: SocketAddr,
}

/// Runtime admin states of an upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CtlAction {
    /// No new requests; in-flight ones finish. Health checks go on.
    Drain,
    /// Like drain, and its health checks stop.
    Disable,
    /// Back in rotation (health permitting).
    Enable,
}

impl CtlAction {
    pub fn name(self) -> &'static str {
        match self {
            CtlAction::Drain => "drain",
            CtlAction::Disable => "disable",
            CtlAction::Enable => "enable",
        }
    }
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
