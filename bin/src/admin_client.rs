//! A small HTTP/1.1 client for the admin listeners, used by `stackd status`
//! and `stackd ctl`: one request per connection, a deadline on everything,
//! since an operator runs these exactly when something is stuck.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest admin answer read (a /status of thousands of servers fits).
const MAX_BODY: usize = 8 << 20;

/// One admin answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Where to connect for a listener bound to `addr` (0.0.0.0 means this host).
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str, within: Duration) -> Result<Answer, String> {
    request(addr, "GET", path, within).await
}

/// `POST path` with an empty body.
pub async fn post(addr: SocketAddr, path: &str, within: Duration) -> Result<Answer, String> {
    request(addr, "POST", path, within).await
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    within: Duration,
) -> Result<Answer, String> {
    let addr = reachable(addr);
    match tokio::time::timeout(within, exchange(addr, method, path)).await {
        Ok(r) => r.map_err(|e| format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: no complete answer within {within:?}")),
    }
}

async fn exchange(addr: SocketAddr, method: &str, path: &str) -> Result<Answer, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: stackd-cli\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    (&mut s)
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if buf.len() > MAX_BODY {
        return Err(format!("answer larger than {MAX_BODY} bytes"));
    }
    parse(&buf)
}

/// Parses a whole `Connection: close` answer (Content-Length or to EOF; the
/// admin server never chunks a fixed page).
pub fn parse(buf: &[u8]) -> Result<Answer, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let body_at = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the answer ended inside its head".into()),
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let len = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    let body = &buf[body_at..];
    let body = match len {
        Some(n) if n <= body.len() => &body[..n],
        Some(n) => {
            return Err(format!(
                "the answer ended after {} of {n} body bytes",
                body.len()
            ))
        }
        None => body,
    };
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers() {
        let a = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((a.status, a.body.as_str()), (200, "{}"));
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{}").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse(b"garbage\r\n\r\n").is_err());
        let a = parse(b"HTTP/1.1 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((a.status, a.body.as_str()), (404, "nope"));
    }

    #[test]
    fn unspecified_means_this_host() {
        assert_eq!(
            reachable("0.0.0.0:9090".parse().unwrap()).to_string(),
            "127.0.0.1:9090"
        );
        assert_eq!(
            reachable("[::]:9090".parse().unwrap()).to_string(),
            "[::1]:9090"
        );
        assert_eq!(
            reachable("192.0.2.1:9090".parse().unwrap()).to_string(),
            "192.0.2.1:9090"
        );
    }
}
