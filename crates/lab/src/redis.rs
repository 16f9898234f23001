//! A throwaway `redis-server` for the lab: loopback only, no persistence,
//! on a free port, stopped with the lab.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::probe;
use crate::procs::Procs;
use crate::LabError;

/// `redis-server` on PATH, if any.
pub fn find_redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// Starts `server` on a free loopback port and waits until it answers PING.
pub async fn start(server: &Path, procs: &mut Procs, dir: &Path) -> Result<SocketAddr, LabError> {
    let addr =
        stackd_testkit::net::try_free_addr().map_err(|e| LabError::io("find a free port", e))?;
    let port = addr.port();
    let mut cmd = Command::new(server);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir);
    procs.spawn("redis", cmd, dir)?;
    stackd_testkit::until_ok("redis-server", Duration::from_secs(10), || {
        probe::redis_ping(addr, Duration::from_millis(500))
    })
    .await
    .map_err(LabError::Start)?;
    Ok(addr)
}
