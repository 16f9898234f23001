//! The processes a lab starts, and only those: each is remembered by PID,
//! its output goes to a log file in the lab directory, and it is stopped
//! (SIGTERM, then SIGKILL after a grace period) when the lab ends, also when
//! the lab itself fails (`kill_on_drop`). A process that hands its work to
//! a successor (the proxy's SIGUSR2 upgrade, `crate::notify`) is replaced
//! by it under the same name.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::LabError;

/// How long a stopped process gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long the lab watches a process that handed its work over, to reap
/// it: longer than any drain (`shutdown_grace`).
const REAP_WITHIN: Duration = Duration::from_secs(600);

/// One started process.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    /// `None` for a successor: not started by us, known by PID only.
    child: Option<Child>,
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
            child: Some(child),
        });
        Ok(pid)
    }

    /// `name` handed its work to `pid`, which is `name` from now on; the
    /// old process is reaped when it exits (it drains first, within its
    /// grace period). The old PID, if `name` is known.
    pub fn adopt(&mut self, name: &str, pid: u32) -> Option<u32> {
        let p = self.list.iter_mut().find(|p| p.name == name)?;
        let old = std::mem::replace(&mut p.pid, pid);
        match p.child.take() {
            Some(mut child) => {
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            // A successor handing over in turn.
            None => {
                tokio::spawn(tokio::time::timeout(REAP_WITHIN, successor_ends(old)));
            }
        }
        Some(old)
    }

    pub fn get(&self, name: &str) -> Option<&Proc> {
        self.list.iter().find(|p| p.name == name)
    }

    /// Whether `name` is still running (reaps it if it exited).
    pub fn running(&mut self, name: &str) -> bool {
        self.list
            .iter_mut()
            .find(|p| p.name == name)
            .is_some_and(|p| exited(p).is_none())
    }

    /// Names of processes that exited, with their status; they are forgotten.
    pub fn reap_exited(&mut self) -> Vec<(String, String)> {
        let mut gone = Vec::new();
        self.list.retain_mut(|p| match exited(p) {
            Some(status) => {
                gone.push((p.name.clone(), status));
                false
            }
            None => true,
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

/// How `p` ended, if it has (reaped); `None` while it runs.
fn exited(p: &mut Proc) -> Option<String> {
    match p.child.as_mut() {
        Some(c) => c.try_wait().ok().flatten().map(|s| s.to_string()),
        None => successor_gone(p.pid).then(|| "exited".to_owned()),
    }
}

/// Whether the successor `pid` is gone. It becomes our child (we are the
/// subreaper) once its parent, the process it succeeded, has exited; a
/// zombie of ours is reaped here.
fn successor_gone(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    let pid = Pid::from_raw(raw);
    let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
    kill(pid, None).is_err()
}

/// Returns once the successor `pid` is gone (polled: it is not our child
/// until its parent exits, so there is nothing to wait on).
async fn successor_ends(pid: u32) {
    while !successor_gone(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop_one(p: &mut Proc, grace: Duration) {
    if exited(p).is_some() {
        return;
    }
    let Ok(raw) = i32::try_from(p.pid) else {
        return;
    };
    let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
    let stopped = match p.child.as_mut() {
        Some(c) => tokio::time::timeout(grace, c.wait()).await.is_ok(),
        None => tokio::time::timeout(grace, successor_ends(p.pid))
            .await
            .is_ok(),
    };
    if !stopped {
        tracing::warn!(name = %p.name, pid = p.pid, "did not stop on SIGTERM; killing");
        match p.child.as_mut() {
            Some(c) => {
                let _ = c.kill().await;
            }
            None => {
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
                let _ = tokio::time::timeout(grace, successor_ends(p.pid)).await;
            }
        }
    }
}
