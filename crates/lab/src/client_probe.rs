//! The client's view of a failover: a thread inside the client namespace
//! that asks the VIP for `/healthz` every 50 ms and reports each answer (or
//! its absence), so the page can show the gap a client saw, not only when
//! VRRP says the VIP moved.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::history::now_ms;

/// Between two probes.
const EVERY: Duration = Duration::from_millis(50);
/// One probe's limit: connect, send, read the status line.
const LIMIT: Duration = Duration::from_millis(300);

/// Starts the prober in network namespace `ns` (as named by `ip netns`).
/// It stops when `stop` is set; each result is `(unix ms, answered)`.
pub fn spawn(
    ns: &str,
    target: SocketAddr,
    stop: Arc<AtomicBool>,
    results: Sender<(u64, bool)>,
) -> std::io::Result<JoinHandle<()>> {
    let netns = std::fs::File::open(format!("/run/netns/{ns}"))?;
    std::thread::Builder::new()
        .name("lab-client-probe".into())
        .spawn(move || {
            // Only this thread moves into the client's namespace.
            if let Err(e) = nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET) {
                tracing::warn!(error = %e, "client probe cannot enter the client namespace");
                return;
            }
            while !stop.load(Ordering::Relaxed) {
                let ok = answered(target);
                if results.send((now_ms(), ok)).is_err() {
                    return;
                }
                std::thread::sleep(EVERY);
            }
        })
}

/// Whether `GET /healthz` through `target` got a status below 500 within [`LIMIT`].
fn answered(target: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&target, LIMIT) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(LIMIT));
    let _ = s.set_write_timeout(Some(LIMIT));
    if s
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: lab\r\nUser-Agent: stackd-lab-probe\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| c < 500)
}
