//! A client that opens a new connection every few milliseconds and counts
//! what went wrong: the figure every zero-downtime scenario reports.
//!
//! It runs on its own thread, inside a lab host's namespace when asked
//! ([`stackd_testkit::netns::enter_thread`]), with plain sockets, so its
//! pace is its own and not a process start's. Each request is
//! `GET <path>` with `Connection: close` and the session cookie it got
//! last; an answer with a `visits` field must continue the session (same
//! id, one more visit), or it counts as a lost session.
#![allow(clippy::disallowed_methods)] // a blocking thread: the std clock is the clock

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stackd_testkit::http::{parse, Parsed, Reply};

/// One request's limit: connect, send, read the whole answer. Longer than
/// a SYN retransmission (1 s), so a dropped SYN is slow, not failed.
const LIMIT: Duration = Duration::from_secs(4);

/// What the client saw.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub ok: u64,
    /// Connection refused.
    pub refused: u64,
    /// Every failure (refused included), with when and why.
    pub failed: Vec<(Duration, String)>,
    /// Answers that started a new session or lost a visit.
    pub lost_sessions: u64,
    /// The slowest successful request.
    pub slowest: Duration,
    /// The backends (or `node`s) that answered, in order of first answer.
    pub nodes: Vec<String>,
}

/// The running client; [`Poller::stop`] returns its [`Tally`].
pub struct Poller {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Tally>,
}

impl Poller {
    /// Polls `target` every `every` from namespace `ns` (or this one),
    /// for at most `limit` (a bound for a test that forgets to stop it).
    pub fn start(
        ns: Option<String>,
        target: SocketAddr,
        path: &str,
        every: Duration,
        limit: Duration,
    ) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_owned();
        let handle = std::thread::spawn(move || {
            if let Some(ns) = ns {
                stackd_testkit::netns::enter_thread(&ns).expect("enter the client namespace");
            }
            run(target, &path, every, limit, &flag)
        });
        Poller { stop, handle }
    }

    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("poller thread")
    }
}

fn run(
    target: SocketAddr,
    path: &str,
    every: Duration,
    limit: Duration,
    stop: &AtomicBool,
) -> Tally {
    let start = Instant::now();
    let mut t = Tally::default();
    let mut cookie: Option<String> = None;
    let mut session: Option<(String, u64)> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
        let began = Instant::now();
        match once(target, path, cookie.as_deref()) {
            Ok(r) if r.status == 200 => {
                t.ok += 1;
                t.slowest = t.slowest.max(began.elapsed());
                if let Some(c) = r.cookie() {
                    cookie = Some(c);
                }
                follow(&r, &mut session, &mut t);
            }
            Ok(r) => t
                .failed
                .push((start.elapsed(), format!("status {}", r.status))),
            Err(e) => {
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    t.refused += 1;
                }
                t.failed.push((start.elapsed(), e.to_string()));
            }
        }
        next += every;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    t
}

/// Checks that the session goes on: same id, one more visit.
fn follow(r: &Reply, session: &mut Option<(String, u64)>, t: &mut Tally) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) else {
        return;
    };
    if let Some(node) = v["node"].as_str() {
        if !t.nodes.iter().any(|n| n == node) {
            t.nodes.push(node.to_owned());
        }
    }
    let (Some(id), Some(visits)) = (v["session_id"].as_str(), v["visits"].as_u64()) else {
        return;
    };
    let id = id.split('.').next().unwrap_or(id).to_owned();
    if let Some((last_id, last_visits)) = session.as_ref() {
        if *last_id != id || visits != last_visits + 1 {
            t.lost_sessions += 1;
        }
    }
    *session = Some((id, visits));
}

fn once(target: SocketAddr, path: &str, cookie: Option<&str>) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&target, LIMIT)?;
    s.set_read_timeout(Some(LIMIT))?;
    s.set_write_timeout(Some(LIMIT))?;
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    // One write, as browsers and curl do. `write!` on the socket would send
    // each piece of the format in its own write: after the first, Nagle
    // holds the rest until the server's ACK, and a VIP that moves in that
    // round trip sends them to the new master, which resets the connection
    // (a window of the test's own making, not the stack's).
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: stack.test\r\n{cookie}Connection: close\r\n\r\n");
    s.write_all(head.as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            // The answer is complete even if the peer's reset follows it.
            Err(e) if !buf.is_empty() => match parse(&buf, true) {
                Ok(Parsed::Done(r, _)) => return Ok(r),
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Ok(Parsed::Done(r, _)) = parse(&buf, false) {
            return Ok(r);
        }
    }
    match parse(&buf, true) {
        Ok(Parsed::Done(r, _)) => Ok(r),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("no complete answer ({} bytes)", buf.len()),
        )),
    }
}

impl Tally {
    /// One line for the test's output.
    pub fn summary(&self) -> String {
        format!(
            "{} ok, {} failed ({} refused), {} lost sessions, slowest {} ms",
            self.ok,
            self.failed.len(),
            self.refused,
            self.lost_sessions,
            self.slowest.as_millis()
        )
    }
}
