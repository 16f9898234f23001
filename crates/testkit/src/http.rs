//! A raw HTTP/1 client for tests.
//!
//! It sends exactly the bytes it is given, so a test can be the hostile
//! client (half a head, two `Content-Length`s, a body one byte at a time),
//! and it reads the answer with a small pure parser ([`parse`]) so a test
//! sees the status, every header as sent and the decoded body. Every read
//! and connect is bounded by a timeout; nothing here can hang a test.
//!
//! - [`get`] and [`send`]: one request on a fresh connection, blocking.
//! - [`send_async`] and [`Conn`]: the same on tokio, and a keep-alive
//!   connection for pipelining and lifecycle tests; [`exchange`] for the
//!   raw bytes of an answer.
//! - [`Browser`]: `Connection: close` requests with a one-cookie jar, the
//!   way a browser drives the demo backend.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a whole request may take unless the caller says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP response as it arrived.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in arrival order, repeats kept.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, as text (lossy).
    pub body: String,
}

/// What [`parse`] made of the bytes so far.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole response yet: read more.
    Incomplete,
    /// A whole response, and how many bytes of the buffer it took.
    Done(Reply, usize),
}

// === impl Reply ===

impl Reply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The `name=value` part of the first `Set-Cookie`.
    pub fn cookie(&self) -> Option<String> {
        self.header("set-cookie")
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_owned())
    }

    /// Whether the server said it will close the connection.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// Parses the text of everything a client received (e.g. `curl -i`
    /// output): the final response after any `100 Continue`, body until the end.
    pub fn from_text(text: &str) -> Option<Reply> {
        match parse(text.as_bytes(), true) {
            Ok(Parsed::Done(r, _)) => Some(r),
            _ => None,
        }
    }
}

/// The id part of the demo backend's `<id>.<node>` session id, from the
/// JSON of `/session` or `/login` (the node suffix changes on failover, the
/// id must not).
pub fn session_base(v: &serde_json::Value) -> String {
    let id = v["session_id"].as_str().unwrap_or_default();
    id.split('.').next().unwrap_or(id).to_owned()
}

/// Parses one response at the start of `buf`. Interim `1xx` answers other
/// than `101` are skipped. A body without `Content-Length` or chunking runs
/// to the end of the stream, so it is only complete when `at_eof`.
///
/// An error is a response no client could frame; the text says why.
pub fn parse(buf: &[u8], at_eof: bool) -> Result<Parsed, String> {
    let mut offset = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(&buf[offset..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if at_eof => {
                return Err(format!(
                    "stream ended inside a response head ({} bytes)",
                    buf.len() - offset
                ))
            }
            Ok(httparse::Status::Partial) => return Ok(Parsed::Incomplete),
            Err(e) => return Err(format!("bad response head: {e}")),
        };
        let status = resp.code.unwrap_or(0);
        let headers: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect();
        let start = offset + head_len;
        if (100..200).contains(&status) && status != 101 {
            offset = start;
            continue;
        }
        let mut reply = Reply {
            status,
            headers,
            body: String::new(),
        };
        let rest = &buf[start..];
        let body_end = if status == 101 || status == 204 || status == 304 {
            Some((Vec::new(), 0))
        } else if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            dechunk(rest)?
        } else if let Some(cl) = reply.header("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| format!("bad Content-Length {cl:?}"))?;
            (rest.len() >= n).then(|| (rest[..n].to_vec(), n))
        } else if at_eof {
            Some((rest.to_vec(), rest.len()))
        } else {
            None
        };
        return match body_end {
            Some((body, used)) => {
                reply.body = String::from_utf8_lossy(&body).into_owned();
                Ok(Parsed::Done(reply, start + used))
            }
            None if at_eof => Err(format!("stream ended inside the body of a {status}")),
            None => Ok(Parsed::Incomplete),
        };
    }
}

/// Decodes a chunked body at the start of `buf`: (body, bytes used), or
/// `None` when more bytes are needed. Trailers are read and dropped.
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    Ok(chunks(buf)?.map(|(chunks, used)| (chunks.concat(), used)))
}

/// The chunks of the chunked body of `message` (a head, then the body),
/// each as it came: for tests of how a proxy frames what it passes on.
pub fn chunks_of(message: &[u8]) -> Result<Vec<&[u8]>, String> {
    let start = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of head")?;
    chunks(&message[start + 4..])?
        .map(|(chunks, _)| chunks)
        .ok_or_else(|| "the body is cut short".into())
}

/// A chunked body's chunks, and the bytes it used on the wire.
type Chunks<'a> = (Vec<&'a [u8]>, usize);

/// The chunks of a chunked body at the start of `buf`, and the bytes it
/// used, or `None` when more bytes are needed. Trailers are read and
/// dropped.
fn chunks(buf: &[u8]) -> Result<Option<Chunks<'_>>, String> {
    let mut chunks = Vec::new();
    let mut at = 0;
    loop {
        match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete((n, size))) => {
                at += n;
                let size = usize::try_from(size).map_err(|_| "chunk too large".to_owned())?;
                if size == 0 {
                    // Trailer section: lines until an empty one.
                    loop {
                        let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                            return Ok(None);
                        };
                        at += eol + 2;
                        if eol == 0 {
                            return Ok(Some((chunks, at)));
                        }
                    }
                }
                if buf.len() < at + size + 2 {
                    return Ok(None);
                }
                chunks.push(&buf[at..at + size]);
                at += size + 2;
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("bad chunk size line".into()),
        }
    }
}

/// `GET path` with `Host: test` and `Connection: close` on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Reply> {
    send(addr, get_request(path).as_bytes())
}

/// The bytes of a `GET path` that closes its connection.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

/// Sends `request` as is on a fresh connection and reads one response
/// (bounded by [`TIMEOUT`]).
pub fn send(addr: SocketAddr, request: &[u8]) -> io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        match parse(&buf, n == 0).map_err(io::Error::other)? {
            Parsed::Done(r, _) => return Ok(r),
            Parsed::Incomplete => {}
        }
    }
}

/// [`send`] on tokio.
pub async fn send_async(addr: SocketAddr, request: &[u8]) -> io::Result<Reply> {
    let mut c = Conn::connect(addr).await?;
    c.write(request).await?;
    c.reply(TIMEOUT).await
}

/// [`get`] on tokio.
pub async fn get_async(addr: SocketAddr, path: &str) -> io::Result<Reply> {
    send_async(addr, get_request(path).as_bytes()).await
}

/// Sends `bytes` on a fresh connection and returns everything that comes
/// back until the peer closes or `within` passes: for tests that look at
/// the raw answer (`HTTP/1.1 408`, or nothing at all).
pub async fn exchange(addr: SocketAddr, bytes: &[u8], within: Duration) -> io::Result<String> {
    let mut c = Conn::connect(addr).await?;
    c.write(bytes).await?;
    c.closed_within(within).await;
    Ok(String::from_utf8_lossy(c.unread()).into_owned())
}

fn timed_out(what: &str, within: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what}: nothing within {within:?}"),
    )
}

/// A client connection on tokio that keeps what it has read but not yet
/// parsed, so pipelined responses come out one by one.
pub struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

// === impl Conn ===

impl Conn {
    /// Connects, within [`TIMEOUT`].
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connect", TIMEOUT))??;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        })
    }

    /// Writes all of `bytes`, within [`TIMEOUT`].
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::time::timeout(TIMEOUT, self.stream.write_all(bytes))
            .await
            .map_err(|_| timed_out("write", TIMEOUT))?
    }

    /// The next response, within `within`.
    pub async fn reply(&mut self, within: Duration) -> io::Result<Reply> {
        let work = async {
            loop {
                match parse(&self.buf, self.eof).map_err(io::Error::other)? {
                    Parsed::Done(r, used) => {
                        self.buf.drain(..used);
                        return Ok(r);
                    }
                    Parsed::Incomplete => self.fill().await?,
                }
            }
        };
        tokio::time::timeout(within, work)
            .await
            .map_err(|_| timed_out("response", within))?
    }

    /// Whether the peer closes (EOF or reset) within `within`; bytes that
    /// arrive meanwhile are kept.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let work = async {
            while !self.eof {
                if self.fill().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(within, work).await.is_ok()
    }

    /// Everything read but not yet parsed as a response.
    pub fn unread(&self) -> &[u8] {
        &self.buf
    }

    /// The socket, for tests that need more control.
    pub fn stream(&mut self) -> &mut tokio::net::TcpStream {
        &mut self.stream
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await;
        match n {
            Ok(0) => {
                if self.eof {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    ));
                }
                self.eof = true;
                Ok(())
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => {
                self.eof = true;
                Err(e)
            }
        }
    }
}

/// A browser for the demo backend: every request on a fresh connection
/// (`Connection: close`, so a balancer may route it anywhere) carrying the
/// session cookie it was last given.
#[derive(Clone, Debug)]
pub struct Browser {
    /// The session cookie's value, once set.
    pub cookie: Option<String>,
    /// The cookie's name (the demo backend's default is `SESSIONID`).
    pub cookie_name: String,
    /// Every `Set-Cookie` of the last reply, as sent.
    pub last_set_cookie: Vec<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

// === impl Browser ===

impl Browser {
    pub fn new() -> Browser {
        Browser {
            cookie: None,
            cookie_name: "SESSIONID".into(),
            last_set_cookie: Vec::new(),
        }
    }

    pub async fn get(&mut self, addr: SocketAddr, path: &str) -> io::Result<Reply> {
        self.send(addr, "GET", path, None).await
    }

    pub async fn post_json(
        &mut self,
        addr: SocketAddr,
        path: &str,
        body: &str,
    ) -> io::Result<Reply> {
        self.send(addr, "POST", path, Some(("application/json", body)))
            .await
    }

    /// One request; `body` is (content type, text). Follows `Set-Cookie`
    /// for [`Browser::cookie_name`]: a new value replaces the old, an empty
    /// one (logout) clears it.
    pub async fn send(
        &mut self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> io::Result<Reply> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if let Some(c) = &self.cookie {
            req.push_str(&format!("Cookie: other=1; {}={c}\r\n", self.cookie_name));
        }
        match body {
            Some((ct, b)) => req.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => req.push_str("\r\n"),
        }
        let reply = send_async(addr, req.as_bytes()).await?;
        self.last_set_cookie = reply.all("set-cookie").map(str::to_owned).collect();
        for sc in &self.last_set_cookie {
            let pair = sc.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if name.trim() == self.cookie_name {
                    self.cookie = (!value.is_empty()).then(|| value.to_owned());
                }
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(bytes: &[u8], eof: bool) -> (Reply, usize) {
        match parse(bytes, eof) {
            Ok(Parsed::Done(r, n)) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn content_length_body_and_pipelined_rest() {
        let b = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nhiHTTP/1.1";
        let (r, n) = done(b, false);
        assert_eq!((r.status, r.body.as_str(), n), (200, "hi", b.len() - 8));
        assert_eq!(r.all("X-A").collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn chunked_with_trailers_and_interim_continue() {
        let b = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nT: x\r\n\r\n";
        let (r, n) = done(b, false);
        assert_eq!((r.status, r.body.as_str(), n), (201, "abcde", b.len()));
    }

    #[test]
    fn needs_more_bytes_until_the_body_or_eof() {
        let b = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab";
        assert!(matches!(parse(b, false), Ok(Parsed::Incomplete)));
        assert!(parse(b, true).is_err(), "a short body at EOF is an error");
        let close = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
        assert!(matches!(parse(close, false), Ok(Parsed::Incomplete)));
        assert_eq!(done(close, true).0.body, "until close");
        assert!(parse(b"HTTP/1.1 200", true).is_err());
        assert!(parse(b"garbage\r\n\r\n", false).is_err());
    }

    #[test]
    fn cookie_and_from_text() {
        let r = Reply::from_text("HTTP/1.1 200 OK\r\nSet-Cookie: SESSIONID=abc.n1; Path=/\r\nConnection: close\r\n\r\n{}")
            .expect("parses");
        assert_eq!(r.cookie().as_deref(), Some("SESSIONID=abc.n1"));
        assert!(r.closes());
        assert!(Reply::from_text("garbage").is_none());
    }
}
