//! Small HTTP/1 backends for tests, on plain threads so they work beside
//! any runtime (or none).
//!
//! - [`Named`] answers every request with its name, keeps connections
//!   alive, and counts requests and connections: enough to see balancing,
//!   reuse and failover.
//! - [`Scripted`] hands each accepted connection to a closure: the
//!   misbehaving upstream (a bad status line, two framings, a response that
//!   never ends) is whatever the test writes.
//!
//! Both stop accepting when dropped; `Named` also drops its open connections.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Counters a backend keeps, shared with its threads.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests answered.
    pub requests: AtomicUsize,
    /// TCP connections accepted.
    pub connections: AtomicUsize,
}

/// A keep-alive HTTP/1.1 backend answering `<name>` to every request.
pub struct Named {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

// === impl Named ===

impl Named {
    /// Starts on a free loopback port.
    pub fn start(name: &str) -> Named {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind backend {name}: {e}"));
        Named::on(listener, name)
    }

    /// Starts on `listener`.
    pub fn on(listener: TcpListener, name: &str) -> Named {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("backend address: {e}"));
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let body = name.to_owned();
        let (c, s, o) = (counts.clone(), stop.clone(), open.clone());
        accept_loop(listener, stop.clone(), move |conn| {
            if s.load(Ordering::Relaxed) {
                return;
            }
            c.connections.fetch_add(1, Ordering::Relaxed);
            if let Ok(clone) = conn.try_clone() {
                lock(&o).push(clone);
            }
            serve_named(conn, &body, &c);
        });
        Named {
            addr,
            counts,
            stop,
            open,
        }
    }

    pub fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::Relaxed)
    }

    /// Stops accepting and resets every open connection, like a crash.
    pub fn kill(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in lock(&self.open).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers requests on `conn` until the client closes.
fn serve_named(mut conn: TcpStream, name: &str, counts: &Counts) {
    let mut buf = Vec::new();
    loop {
        let Ok(Some(used)) = read_request(&mut conn, &mut buf) else {
            return;
        };
        buf.drain(..used);
        counts.requests.fetch_add(1, Ordering::Relaxed);
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{name}",
            name.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one whole request (head and `Content-Length` body) into `buf`;
/// returns its length, or `None` when the client closed first.
pub fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head) = req.parse(buf).map_err(io::Error::other)? {
            let len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(0);
            if buf.len() >= head + len {
                return Ok(Some(head + len));
            }
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A backend that runs `script` on every accepted connection, each on its
/// own thread.
pub struct Scripted {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

// === impl Scripted ===

impl Scripted {
    pub fn start(script: impl Fn(TcpStream) + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("bind scripted backend: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("backend address: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (a, s) = (accepted.clone(), stop.clone());
        accept_loop(listener, stop.clone(), move |conn| {
            if !s.load(Ordering::Relaxed) {
                a.fetch_add(1, Ordering::Relaxed);
                script(conn);
            }
        });
        Scripted {
            addr,
            accepted,
            stop,
        }
    }

    /// A backend that answers every request of a connection with
    /// `answer`, as it is, until the client closes.
    pub fn answering(answer: Vec<u8>) -> Scripted {
        Scripted::start(move |mut conn| {
            let mut buf = Vec::new();
            while let Ok(Some(n)) = read_request(&mut conn, &mut buf) {
                buf.drain(..n);
                if conn.write_all(&answer).is_err() {
                    return;
                }
            }
        })
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Accepts until `stop`, running `each` on a thread per connection.
fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    each: impl Fn(TcpStream) + Send + Sync + 'static,
) {
    let each = Arc::new(each);
    thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let each = each.clone();
            thread::spawn(move || each(conn));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_answers_keeps_alive_and_dies() {
        let b = Named::start("a");
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut s = TcpStream::connect(b.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(req).expect("write");
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut bodies = Vec::new();
        while bodies.len() < 3 {
            match crate::http::parse(&got, false).expect("valid responses") {
                crate::http::Parsed::Done(r, used) => {
                    bodies.push(r.body);
                    got.drain(..used);
                }
                crate::http::Parsed::Incomplete => {
                    let n = s.read(&mut chunk).expect("read");
                    assert!(n > 0, "closed early");
                    got.extend_from_slice(&chunk[..n]);
                }
            }
        }
        assert_eq!(bodies, ["a", "a", "a"]);
        assert_eq!(b.requests(), 3);
        assert_eq!(b.connections(), 1);
        b.kill();
        assert!(
            crate::http::get(b.addr, "/").is_err(),
            "killed backend answers nothing"
        );
    }

    #[test]
    fn scripted_runs_the_script() {
        let b = Scripted::start(|mut c| {
            let _ = c.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
        });
        let r = crate::http::get(b.addr, "/").expect("reply");
        assert_eq!(r.status, 204);
        assert_eq!(b.accepted(), 1);
    }
}
