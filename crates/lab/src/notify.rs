//! The lab as the proxy's service manager, as far as upgrades go.
//!
//! On SIGUSR2 the proxy starts its successor and exits; it tells systemd
//! the new PID with `MAINPID=` on `NOTIFY_SOCKET`, and systemd supervises
//! that one from then on. The lab offers the same socket, so an operator
//! who tries the upgrade in the lab gets what systemd gives them: the lab
//! follows the new proxy, reports it, and stops it with everything else.
//! The lab is also the subreaper of its tree, so the successor, orphaned
//! when the old proxy exits, becomes the lab's child to reap. The
//! `--netns` lab gives each of its two proxies a socket of its own
//! (`five_hosts`) and reads them with [`main_pid_of`].

use std::path::{Path, PathBuf};

use tokio::net::UnixDatagram;

use crate::LabError;

/// A bound `NOTIFY_SOCKET`.
pub(crate) struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    /// Binds `dir/notify.sock` and makes this process the subreaper of
    /// the processes it starts.
    pub(crate) fn bind(dir: &Path) -> Result<Notify, LabError> {
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path)
            .map_err(|e| LabError::io(format!("bind {}", path.display()), e))?;
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| LabError::io("become the subreaper of the lab's processes", e.into()))?;
        Ok(Notify { sock, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The PID of the next `MAINPID=` message; other messages are skipped.
    pub(crate) async fn main_pid(&self) -> u32 {
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = self.sock.recv(&mut buf).await {
                if let Some(pid) = main_pid_of(&buf[..n]) {
                    return pid;
                }
            }
        }
    }
}

/// `MAINPID=` of one sd_notify datagram (newline-separated assignments).
pub(crate) fn main_pid_of(datagram: &[u8]) -> Option<u32> {
    std::str::from_utf8(datagram)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .and_then(|p| p.trim().parse().ok())
        .filter(|&p| p > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_pid_is_read_from_a_notify_message() {
        assert_eq!(
            main_pid_of(b"MAINPID=4242\nREADY=1\nSTATUS=upgraded"),
            Some(4242)
        );
        assert_eq!(main_pid_of(b"READY=1\nSTATUS=serving"), None);
        assert_eq!(main_pid_of(b"MAINPID=x"), None);
        assert_eq!(main_pid_of(b"MAINPID=1"), None, "never init");
        assert_eq!(main_pid_of(&[0xff, 0xfe]), None);
    }

    #[tokio::test]
    async fn a_sent_main_pid_is_received() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notify::bind(dir.path()).unwrap();
        let tx = std::os::unix::net::UnixDatagram::unbound().unwrap();
        tx.send_to(b"READY=1", n.path()).unwrap();
        tx.send_to(b"MAINPID=777\nREADY=1", n.path()).unwrap();
        assert_eq!(n.main_pid().await, 777);
    }
}
