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
use nix::unistd::Pid;
use stackd_testkit::process::Adopted;
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
    handle: Handle,
}

/// How the lab knows a process it watches.
#[derive(Debug)]
enum Handle {
    /// Started by the lab.
    Child(Child),
    /// A successor the process it took over from named: not started by us.
    Successor(Adopted),
    /// A successor that was gone before it could be adopted.
    Gone,
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
            handle: Handle::Child(child),
        });
        Ok(pid)
    }

    /// `name` handed its work to `pid`, which is `name` from now on; the
    /// old process is reaped when it exits (it drains first, within its
    /// grace period). The old PID, if `name` is known.
    pub fn adopt(&mut self, name: &str, pid: u32) -> Option<u32> {
        let p = self
            .list
            .iter_mut()
            .find(|p| p.name == name && p.pid != pid)?;
        let old = std::mem::replace(&mut p.pid, pid);
        let next = Adopted::of(pid).map_or(Handle::Gone, Handle::Successor);
        match std::mem::replace(&mut p.handle, next) {
            Handle::Child(mut child) => {
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            // A successor handing over in turn.
            Handle::Successor(a) => {
                tokio::spawn(tokio::time::timeout(REAP_WITHIN, ends(a)));
            }
            Handle::Gone => {}
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
    match &mut p.handle {
        Handle::Child(c) => c.try_wait().ok().flatten().map(|s| s.to_string()),
        Handle::Successor(a) => a.ended().then(|| "exited".to_owned()),
        Handle::Gone => Some("exited".to_owned()),
    }
}

/// Returns once the successor `a` has ended (polled: it is not our child
/// until its parent exits, so there is nothing to wait on).
async fn ends(a: Adopted) {
    while !a.ended() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop_one(p: &mut Proc, grace: Duration) {
    if exited(p).is_some() {
        return;
    }
    match &mut p.handle {
        Handle::Child(c) => {
            if let Ok(raw) = i32::try_from(p.pid) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
            }
            if tokio::time::timeout(grace, c.wait()).await.is_err() {
                tracing::warn!(name = %p.name, pid = p.pid, "did not stop on SIGTERM; killing");
                let _ = c.kill().await;
            }
        }
        Handle::Successor(a) => {
            a.signal(Signal::SIGTERM);
            if tokio::time::timeout(grace, ends(*a)).await.is_err() {
                tracing::warn!(name = %p.name, pid = p.pid, "did not stop on SIGTERM; killing");
                a.signal(Signal::SIGKILL);
                let _ = tokio::time::timeout(grace, ends(*a)).await;
            }
        }
        Handle::Gone => {}
    }
}
