//! A deliberately tiny HTTP/1.1 client for health probes and webhooks.
//!
//! Both only need "send one request to an http:// URL, get the status code,
//! within a deadline". A full client stack would add connection pools and
//! TLS we do not use; this one opens a connection, writes, reads the status
//! line and closes.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `http://host[:port]/path` split into (authority with port, path).
pub fn split_url(url: &str) -> io::Result<(String, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: only http:// URLs"),
        )
    })?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if auth.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{url}: no host"),
        ));
    }
    let has_port = auth
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !auth.ends_with(']');
    let auth = if has_port {
        auth.to_owned()
    } else {
        format!("{auth}:80")
    };
    Ok((auth, path.to_owned()))
}

/// Sends one request and returns the response status code.
pub async fn request(
    method: &str,
    url: &str,
    json: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<u16> {
    let (auth, path) = split_url(url)?;
    let work = async {
        let mut s = TcpStream::connect(&auth).await?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {auth}\r\nUser-Agent: stackd-ha\r\nConnection: close\r\n");
        if let Some(b) = json {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await?;
        if let Some(b) = json {
            s.write_all(b).await?;
        }
        let mut head = Vec::with_capacity(64);
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        parse_status(&head)
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{url}: no answer within {timeout:?}"),
        )
    })?
}

fn parse_status(head: &[u8]) -> io::Result<u16> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP response: {text:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:9090/healthz").ok(),
            Some(("127.0.0.1:9090".into(), "/healthz".into()))
        );
        assert_eq!(
            split_url("http://example.test").ok(),
            Some(("example.test:80".into(), "/".into()))
        );
        assert!(split_url("https://x/").is_err());
        assert!(split_url("http:///x").is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\n").ok(),
            Some(503)
        );
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status(b"").is_err());
    }

    #[tokio::test]
    async fn talks_to_a_loopback_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            }
        });
        let code = request(
            "GET",
            &format!("http://{addr}/healthz"),
            None,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(code.ok(), Some(204));
    }
}
