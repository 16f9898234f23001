//! How the proxy leaves without refusing anyone.
//!
//! - **SIGTERM: demote, then drain.** `/healthz` says "draining" (503) while
//!   the proxy keeps accepting and serving, so a `stackd ha` tracking it
//!   hands the VIP to the peer first; once no watched VIP is on the host
//!   (or `drain_delay` is over) it stops accepting, takes the connections
//!   the kernel already queued, and drains within `shutdown_grace`.
//! - **SIGUSR2: binary upgrade.** The listening sockets (clients and admin)
//!   go to a new process started from the same path with the same
//!   arguments ([`stackd_common::upgrade`]); when it says it is ready, this
//!   one stops accepting (the sockets stay open in the new one, so queued
//!   connections wait for it) and drains. If it fails, nothing changes.
//!
//! [`Control`] is what the process around the proxy hands in: the signals
//! as values, the sockets it inherited, and the addresses to watch.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackd_common::upgrade::{self, Ready};
use stackd_common::CancellationToken;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::error::{ErrorKind, ProxyError};

/// `drain_delay` when the config does not set it and VIPs are watched.
pub(crate) const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// How often the drain looks whether the VIPs are still on the host.
const VIP_POLL: Duration = Duration::from_millis(20);
/// How long a new process may take to be ready (bind, first health round).
const UPGRADE_WITHIN: Duration = Duration::from_secs(30);

/// What the process hands the proxy besides its config.
#[derive(Debug)]
pub struct Control {
    /// SIGTERM/SIGINT: demote, then drain and return.
    pub shutdown: CancellationToken,
    /// SIGUSR2: hand the listeners to a new process, then drain and return.
    pub upgrades: Option<mpsc::Receiver<()>>,
    /// Listening sockets passed in (systemd socket activation or the old
    /// process of an upgrade), used instead of binding their addresses.
    pub inherited: Vec<std::net::TcpListener>,
    /// Set when an old process waits for us: told once we serve.
    pub ready: Option<Ready>,
    /// Virtual addresses whose presence on the host keeps the drain going
    /// (the `[ha]` addresses of the same file).
    pub drain_vips: Vec<IpAddr>,
}

/// Why the serving loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Shutdown,
    /// A new process (this PID) serves on our sockets now.
    HandedOver(u32),
}

/// Duplicates of every listening socket we serve on, for a hand-over.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sockets(Arc<Mutex<Vec<(SocketAddr, OwnedFd)>>>);

// === impl Control ===

impl Control {
    /// Only a shutdown token: nothing inherited, no upgrades, no VIPs.
    pub fn new(shutdown: CancellationToken) -> Control {
        Control {
            shutdown,
            upgrades: None,
            inherited: Vec::new(),
            ready: None,
            drain_vips: Vec::new(),
        }
    }

    /// The next request to end: shutdown, or an upgrade that took over.
    /// A failed upgrade is logged and waited past.
    pub(crate) async fn next_ending(&mut self, sockets: &Sockets) -> Ending {
        loop {
            let asked = match self.upgrades.as_mut() {
                Some(rx) => tokio::select! {
                    _ = self.shutdown.cancelled() => return Ending::Shutdown,
                    r = rx.recv() => r.is_some(),
                },
                None => false,
            };
            if !asked {
                self.upgrades = None;
                self.shutdown.cancelled().await;
                return Ending::Shutdown;
            }
            let fds = sockets.dups();
            match upgrade::start_successor(&fds, UPGRADE_WITHIN).await {
                Ok(s) => {
                    tracing::info!(
                        pid = s.pid,
                        "upgrade: the new process is ready; this one stops accepting and drains"
                    );
                    return Ending::HandedOver(s.pid);
                }
                Err(e) => tracing::error!(error = %e, "upgrade failed; this process keeps serving"),
            }
        }
    }

    /// The drain phase's length for `configured` (`drain_delay`).
    pub(crate) fn drain_delay(&self, configured: Option<Duration>) -> Duration {
        match (configured, self.drain_vips.is_empty()) {
            (Some(d), _) => d,
            (None, false) => DEFAULT_DRAIN_DELAY,
            (None, true) => Duration::ZERO,
        }
    }

    /// Waits until no watched VIP is on this host, at most `delay`.
    pub(crate) async fn drain_wait(&self, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        let start = tokio::time::Instant::now();
        while tokio::time::Instant::now() < until {
            if !self.drain_vips.iter().any(|v| on_host(*v)) && !self.drain_vips.is_empty() {
                tracing::info!(after = ?start.elapsed(), "the virtual addresses left this host");
                return;
            }
            tokio::time::sleep(VIP_POLL.min(until - tokio::time::Instant::now())).await;
        }
        if !delay.is_zero() {
            tracing::info!(?delay, "drain_delay over");
        }
    }
}

/// Whether `ip` is an address of this host: only then can a socket bind it
/// (no `ip_nonlocal_bind`, no `IP_FREEBIND`). Cheaper than a netlink dump,
/// and needs no privilege.
pub(crate) fn on_host(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

// === impl Sockets ===

impl Sockets {
    /// Remembers a duplicate of `l` (bound to `addr`) for a hand-over.
    pub(crate) fn add(&self, addr: SocketAddr, l: &impl AsFd) {
        match l.as_fd().try_clone_to_owned() {
            Ok(fd) => self.lock().push((addr, fd)),
            Err(e) => tracing::warn!(%addr, error = %e, "cannot keep a duplicate for an upgrade"),
        }
    }

    /// Forgets every socket of `addr` (a listener closed by a reload).
    pub(crate) fn remove(&self, addr: SocketAddr) {
        self.lock().retain(|(a, _)| *a != addr);
    }

    /// Closes every duplicate.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn dups(&self) -> Vec<OwnedFd> {
        self.lock()
            .iter()
            .filter_map(|(_, fd)| fd.try_clone().ok())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SocketAddr, OwnedFd)>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Inherited listeners by the address they are bound to.
#[derive(Debug, Default)]
pub(crate) struct Inherited(HashMap<SocketAddr, Vec<std::net::TcpListener>>);

impl Inherited {
    pub(crate) fn new(list: Vec<std::net::TcpListener>) -> Inherited {
        let mut map: HashMap<SocketAddr, Vec<std::net::TcpListener>> = HashMap::new();
        for l in list {
            match l.local_addr() {
                Ok(a) => map.entry(a).or_default().push(l),
                Err(e) => tracing::warn!(error = %e, "inherited socket without an address; closed"),
            }
        }
        Inherited(map)
    }

    /// The inherited sockets of `addr` (several after an upgrade from
    /// workers mode: one per worker, all to be served).
    pub(crate) fn take(&mut self, addr: SocketAddr) -> Vec<std::net::TcpListener> {
        let got = self.0.remove(&addr).unwrap_or_default();
        if !got.is_empty() {
            tracing::info!(%addr, sockets = got.len(), "using inherited listening socket");
        }
        got
    }

    /// The sockets of `addr`, inherited or bound now.
    pub(crate) async fn take_or_bind(
        &mut self,
        addr: SocketAddr,
    ) -> Result<Vec<TcpListener>, ProxyError> {
        let got = self.take(addr);
        if got.is_empty() {
            return Ok(vec![super::bind(addr).await?]);
        }
        got.into_iter()
            .map(|l| {
                TcpListener::from_std(l)
                    .map_err(|error| ProxyError::proxy(ErrorKind::Bind { addr, error }))
            })
            .collect()
    }

    /// Logs and closes what the config does not name.
    pub(crate) fn close_rest(self) {
        for addr in self.0.keys() {
            tracing::warn!(%addr, "inherited socket not in the config; closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_on_the_host_and_test_net_is_not() {
        assert!(on_host(IpAddr::from([127, 0, 0, 1])));
        assert!(!on_host(IpAddr::from([192, 0, 2, 254])));
    }

    #[test]
    fn drain_delay_defaults_by_whether_vips_are_watched() {
        let mut c = Control::new(CancellationToken::new());
        assert_eq!(c.drain_delay(None), Duration::ZERO);
        assert_eq!(
            c.drain_delay(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        c.drain_vips = vec![IpAddr::from([192, 0, 2, 88])];
        assert_eq!(c.drain_delay(None), DEFAULT_DRAIN_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_ends_at_once_when_the_vips_are_gone() {
        let mut c = Control::new(CancellationToken::new());
        c.drain_vips = vec![IpAddr::from([192, 0, 2, 254])];
        let t = tokio::time::Instant::now();
        c.drain_wait(Duration::from_secs(5)).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
        c.drain_vips = vec![IpAddr::from([127, 0, 0, 1])];
        c.drain_wait(Duration::from_secs(5)).await;
        assert_eq!(
            t.elapsed(),
            Duration::from_secs(5),
            "a VIP still here: the whole delay"
        );
    }
}
