//! The lab as the proxy's service manager, as far as upgrades go.
//!
//! On SIGUSR2 the proxy starts its successor and exits; it tells systemd
//! the new PID with `MAINPID=` on `NOTIFY_SOCKET`, and systemd supervises
//! that one from then on. The labs offer the same socket (the loopback lab
//! one, the `--netns` lab one per proxy), so an operator who tries the
//! upgrade in a lab gets what systemd gives them: the lab follows the new
//! proxy, reports it, and stops it with everything else. A lab is also the
//! subreaper of its tree ([`become_subreaper`]), so the successor, orphaned
//! when the old proxy exits, becomes the lab's child to reap.
//!
//! The socket is read without blocking on the lab's once-a-second tick:
//! a hand-over is followed within a second, and the same code serves the
//! async loopback lab and the blocking five-host stack.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::LabError;

/// Most messages read per call: a proxy sends a handful in its life.
const READ_AT_MOST: usize = 64;

/// A bound, non-blocking `NOTIFY_SOCKET`.
pub(crate) struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    /// Binds `path` (a stale socket file there is replaced).
    pub(crate) fn bind(path: PathBuf) -> io::Result<Notify> {
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path)?;
        sock.set_nonblocking(true)?;
        Ok(Notify { sock, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The PIDs named by `MAINPID=` since the last call, in the order they
    /// came; other messages are skipped.
    pub(crate) fn main_pids(&self) -> Vec<u32> {
        let mut buf = [0u8; 4096];
        let mut pids = Vec::new();
        for _ in 0..READ_AT_MOST {
            let Ok(n) = self.sock.recv(&mut buf) else {
                break;
            };
            pids.extend(main_pid_of(&buf[..n]));
        }
        pids
    }
}

/// Makes this process the subreaper of the processes it starts.
pub(crate) fn become_subreaper() -> Result<(), LabError> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| LabError::io("become the subreaper of the lab's processes", e.into()))
}

/// `MAINPID=` of one sd_notify datagram (newline-separated assignments).
fn main_pid_of(datagram: &[u8]) -> Option<u32> {
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

    #[test]
    fn sent_main_pids_are_received_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notify::bind(dir.path().join("notify.sock")).unwrap();
        assert!(n.main_pids().is_empty(), "nothing sent: no wait");
        let tx = UnixDatagram::unbound().unwrap();
        tx.send_to(b"READY=1", n.path()).unwrap();
        tx.send_to(b"MAINPID=777\nREADY=1", n.path()).unwrap();
        tx.send_to(b"MAINPID=778", n.path()).unwrap();
        assert_eq!(n.main_pids(), vec![777, 778]);
        assert!(n.main_pids().is_empty());
    }
}
