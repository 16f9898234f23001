//! Binary upgrade without closing a socket (nginx's SIGUSR2, done the
//! systemd way): start the binary now at our path with our arguments,
//! hand it our listening sockets, and wait until it says it is ready.
//!
//! ```text
//!   old: SIGUSR2 ─► dup listeners (close-on-exec) ─► spawn same path + args
//!        │            env STACKD_UPGRADE_PARENT=<old pid>, STACKD_UPGRADE_FDS=<fds>,
//!        │                STACKD_UPGRADE_READY=<pipe write end>
//!        └─ wait: "ready" byte on the pipe ─► stop accepting, drain, exit
//!                 EOF / exit / timeout ─────► log why, keep serving
//!   new: take_inherited() (before threads) ─► serve on them ─► Ready::send()
//! ```
//!
//! The sockets stay open through the whole swap (both processes hold them),
//! so the kernel keeps queueing connections and nothing is refused. The fds
//! are passed at their own numbers (not moved to 3..): moving them would
//! need `dup2` into slots the standard library may be using for its own
//! exec-error pipe at that moment.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::systemd::{Inherited, UPGRADE_PARENT};

const FDS: &str = "STACKD_UPGRADE_FDS";
const READY: &str = "STACKD_UPGRADE_READY";

/// Why an upgrade did not happen; the old process keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("cannot find our own binary: {0}")]
    Exe(io::Error),
    #[error("cannot pass the listening sockets: {0}")]
    Fds(io::Error),
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the new process (pid {pid}) exited before it was ready ({status}); see its messages above"
    )]
    Exited { pid: u32, status: String },
    #[error("the new process (pid {pid}) was not ready within {within:?}; stopped it")]
    Slow { pid: u32, within: Duration },
}

/// A successor that said it is ready.
#[derive(Debug)]
pub struct Successor {
    pub pid: u32,
}

/// The path we were started from: `/proc/self/exe`, which names the file
/// even after a package replaced it (with " (deleted)" appended: the new
/// file at the same path is the one to start).
pub fn own_path() -> io::Result<PathBuf> {
    let p = std::env::current_exe()?;
    let s = p.to_string_lossy();
    Ok(match s.strip_suffix(" (deleted)") {
        Some(orig) => PathBuf::from(orig),
        None => p,
    })
}

/// Starts our binary again with our arguments and `sockets`, and waits up
/// to `within` for it to be ready. On error the successor is gone (or was
/// never started) and every socket is still ours.
pub async fn start_successor(
    sockets: &[impl AsFd],
    within: Duration,
) -> Result<Successor, UpgradeError> {
    let path = own_path().map_err(UpgradeError::Exe)?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // Duplicates, close-on-exec in this process; the child clears the flag.
    let dups: Vec<OwnedFd> = sockets
        .iter()
        .map(|s| s.as_fd().try_clone_to_owned())
        .collect::<io::Result<_>>()
        .map_err(UpgradeError::Fds)?;
    let (ready_r, ready_w) = pipe().map_err(UpgradeError::Fds)?;
    let nums: Vec<RawFd> = dups.iter().map(AsRawFd::as_raw_fd).collect();
    let list = nums
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let w = ready_w.as_raw_fd();
    let mut cmd = tokio::process::Command::new(&path);
    cmd.args(&args)
        .env(UPGRADE_PARENT, std::process::id().to_string())
        .env(FDS, list)
        .env(READY, w.to_string())
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES");
    let keep: Vec<RawFd> = nums.iter().copied().chain([w]).collect();
    // SAFETY: the closure only calls fcntl(2), which is async-signal-safe,
    // on descriptors that are open in this process (owned by `dups` and
    // `ready_w`, alive until after spawn returns).
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| UpgradeError::Spawn {
        path: path.clone(),
        source,
    })?;
    drop((dups, ready_w));
    let pid = child.id().unwrap_or(0);
    tracing::info!(pid, path = %path.display(), "upgrade: new process started, waiting until it is ready");
    let mut rx =
        tokio::net::unix::pipe::Receiver::from_owned_fd(ready_r).map_err(UpgradeError::Fds)?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(within, rx.read(&mut byte)).await {
        Ok(Ok(1)) => Ok(Successor { pid }),
        Ok(_) => {
            let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                Ok(Ok(s)) => s.to_string(),
                _ => "closed its readiness pipe".to_owned(),
            };
            Err(UpgradeError::Exited { pid, status })
        }
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(UpgradeError::Slow { pid, within })
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, checked below.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The successor's end: tells the old process it may stop accepting.
#[derive(Debug)]
pub struct Ready(OwnedFd);

impl Ready {
    /// Says "ready" once; the old process then drains and exits.
    pub fn send(self) {
        let b = [b'R'];
        // SAFETY: writing one byte from a valid buffer to a descriptor we own.
        let n = unsafe { libc::write(self.0.as_raw_fd(), b.as_ptr().cast(), 1) };
        if n != 1 {
            tracing::warn!(error = %io::Error::last_os_error(), "could not tell the old process we are ready");
        }
    }
}

/// What a process started by [`start_successor`] (or by systemd socket
/// activation) inherited: its listening sockets, and, for an upgrade, the
/// pipe on which to say it is ready. Call once, before threads start.
pub fn take_inherited() -> (Vec<Inherited>, Option<Ready>, Vec<String>) {
    let from_parent = std::env::var(UPGRADE_PARENT)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::os::unix::process::parent_id());
    let fds = std::env::var(FDS).ok();
    let ready = std::env::var(READY).ok();
    for v in [FDS, READY] {
        std::env::remove_var(v);
    }
    if !from_parent {
        let (l, e) = crate::systemd::take_listen_fds();
        return (l, None, e);
    }
    std::env::remove_var(UPGRADE_PARENT);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in fds.iter().flat_map(|f| f.split(',')) {
        let Ok(fd) = n.parse::<RawFd>() else {
            errors.push(format!("{FDS}: {n:?} is not a descriptor"));
            continue;
        };
        // SAFETY: our parent passed this descriptor for us to own (see start_successor).
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        match crate::systemd::listener_of(owned) {
            Ok(listener) => out.push(Inherited {
                listener,
                name: None,
            }),
            Err(e) => errors.push(format!("inherited fd {fd}: {e}")),
        }
    }
    let ready = ready.and_then(|r| r.parse::<RawFd>().ok()).map(|fd| {
        // SAFETY: as above: the write end of our parent's readiness pipe.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = set_cloexec(&owned);
        Ready(owned)
    });
    (out, ready, errors)
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_path_names_the_replaced_file() {
        let p = own_path().expect("own path");
        assert!(!p.to_string_lossy().ends_with("(deleted)"));
    }
}
