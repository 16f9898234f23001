//! systemd's service protocol, for `Type=notify` units: readiness, reload
//! and stop notifications (`sd_notify(3)`), the watchdog, and listening
//! sockets passed in (`sd_listen_fds(3)`: socket activation, which a binary
//! upgrade reuses).
//!
//! Every call is a no-op outside systemd (no `NOTIFY_SOCKET`), and a failed
//! notification is logged at debug level, never an error: a service must
//! not stop serving because its supervisor went away.
//!
//! A binary upgrade (`stackd proxy` on SIGUSR2) passes sockets its own way
//! ([`crate::upgrade`]); both end up as [`Inherited`] listeners.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use sd_notify::NotifyState;

/// Set by a process handing its sockets to a successor: the old PID.
pub(crate) const UPGRADE_PARENT: &str = "STACKD_UPGRADE_PARENT";

fn send(what: &str, states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, what, "sd_notify failed");
    }
}

/// `READY=1` with a status line: the service is serving.
pub fn ready(status: &str) {
    send("READY", &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` with the monotonic time `Type=notify-reload` asks for.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send("RELOADING", &states);
}

/// `READY=1` after a reload, with its outcome as the status line; a
/// rejected file also sets `ERRNO=` so `systemctl status` shows it.
pub fn reloaded(ok: bool, status: &str) {
    if ok {
        send("READY", &[NotifyState::Ready, NotifyState::Status(status)]);
    } else {
        send(
            "READY",
            &[
                NotifyState::Ready,
                NotifyState::Status(status),
                NotifyState::Errno(22),
            ],
        );
    }
}

/// `STOPPING=1`: the service is shutting down.
pub fn stopping(status: &str) {
    send(
        "STOPPING",
        &[NotifyState::Stopping, NotifyState::Status(status)],
    );
}

/// `STATUS=` alone.
pub fn status(status: &str) {
    send("STATUS", &[NotifyState::Status(status)]);
}

/// `MAINPID=` and `READY=1`: `pid` (a successor) is the service now.
pub fn main_pid(pid: u32) {
    send(
        "MAINPID",
        &[
            NotifyState::MainPid(pid),
            NotifyState::Ready,
            NotifyState::Status("upgraded"),
        ],
    );
}

/// How often the watchdog must be fed (half of `WatchdogSec=`), if enabled.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// `WATCHDOG=1`.
pub fn watchdog() {
    send("WATCHDOG", &[NotifyState::Watchdog]);
}

/// A listening socket this process was started with.
#[derive(Debug)]
pub struct Inherited {
    pub listener: TcpListener,
    /// Its `LISTEN_FDNAMES` entry (`FileDescriptorName=`), if any.
    pub name: Option<String>,
}

/// Takes the listening sockets passed in by systemd (`LISTEN_PID` is us),
/// and unsets the variables so our own children never take them again.
///
/// Call it once, before any thread starts (it changes the environment).
/// Descriptors that are not TCP sockets are closed and reported as errors.
pub fn take_listen_fds() -> (Vec<Inherited>, Vec<String>) {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    let count: Option<RawFd> = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok());
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let (Some(count), true) = (count, ours) else {
        return (Vec::new(), Vec::new());
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, fd) in (3..3 + count.clamp(0, 1024)).enumerate() {
        // SAFETY: the LISTEN_FDS protocol hands this process fds 3..3+n;
        // each is taken once, here, and owned from now on.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = names.get(i).filter(|n| !n.is_empty()).cloned();
        match listener_of(owned) {
            Ok(l) => out.push(Inherited { listener: l, name }),
            Err(e) => errors.push(format!("inherited fd {fd}: {e}")),
        }
    }
    (out, errors)
}

/// A listening TCP socket from an fd, close-on-exec and non-blocking.
pub(crate) fn listener_of(fd: OwnedFd) -> std::io::Result<TcpListener> {
    let sock = socket2::Socket::from(fd);
    if sock.r#type()? != socket2::Type::STREAM || !sock.is_listener()? {
        return Err(std::io::Error::other("not a listening stream socket"));
    }
    sock.set_cloexec(true)?;
    sock.set_nonblocking(true)?;
    let l: TcpListener = sock.into();
    l.local_addr()?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_refuses_non_listening_sockets() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let fd: OwnedFd = l.into();
        assert!(listener_of(fd).is_ok());
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        assert!(listener_of(u.into()).is_err());
    }
}
