//! The processes a lab starts, and only those: each is remembered by PID,
//! its output goes to a log file in the lab directory, and it is stopped
//! (SIGTERM, then SIGKILL after a grace period) when the lab ends, also when
//! the lab itself fails (`kill_on_drop`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::LabError;

/// How long a stopped process gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// One started process.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    child: Child,
}

/// Every process the lab started, in start order.
#[derive(Debug, Default)]
pub struct Procs {
    list: Vec<Proc>,
}

// === impl Procs ===

impl Procs {
    /// Starts `cmd` with its output in `dir/<name>.log`.
    pub fn spawn(&mut self, name: &str, mut cmd: Command, dir: &Path) -> Result<u32, LabError> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)
            .map_err(|e| LabError::io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("dup log file", e))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            LabError::io(
                format!("start {name} ({:?})", cmd.as_std().get_program()),
                e,
            )
        })?;
        let pid = child
            .id()
            .ok_or_else(|| LabError::Start(format!("{name} exited at once")))?;
        tracing::debug!(name, pid, log = %log.display(), "started");
        self.list.push(Proc {
            name: name.to_owned(),
            pid,
            child,
        });
        Ok(pid)
    }

    pub fn get(&self, name: &str) -> Option<&Proc> {
        self.list.iter().find(|p| p.name == name)
    }

    /// Whether `name` is still running (reaps it if it exited).
    pub fn running(&mut self, name: &str) -> bool {
        self.list
            .iter_mut()
            .find(|p| p.name == name)
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Names of processes that exited, with their status; they are forgotten.
    pub fn reap_exited(&mut self) -> Vec<(String, String)> {
        let mut gone = Vec::new();
        self.list.retain_mut(|p| match p.child.try_wait() {
            Ok(Some(status)) => {
                gone.push((p.name.clone(), status.to_string()));
                false
            }
            _ => true,
        });
        gone
    }

    /// Stops `name`: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, name: &str, grace: Duration) {
        if let Some(i) = self.list.iter().position(|p| p.name == name) {
            let mut p = self.list.remove(i);
            stop_one(&mut p, grace).await;
        }
    }

    /// Stops everything, newest first (the proxy before its backends).
    pub async fn stop_all(&mut self, grace: Duration) {
        while let Some(mut p) = self.list.pop() {
            stop_one(&mut p, grace).await;
        }
    }
}

async fn stop_one(p: &mut Proc, grace: Duration) {
    if let Ok(Some(_)) = p.child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(p.pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    if tokio::time::timeout(grace, p.child.wait()).await.is_err() {
        tracing::warn!(name = %p.name, pid = p.pid, "did not stop on SIGTERM; killing");
        let _ = p.child.kill().await;
    }
}
