//! Small, bounded probes the lab uses to wait for components and to fill
//! its status page: an HTTP GET and a Redis PING.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
pub use stackd_common::http_client::HttpClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The lab's client: the one every stackd component uses for outbound HTTP.
pub fn http_client() -> HttpClient {
    HttpClient::new("stackd-lab")
}

/// GETs `url`; returns the status and body, or a short reason (with its
/// causes, e.g. "connection refused").
pub async fn get(
    client: &HttpClient,
    url: &str,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    client
        .get(url, timeout)
        .await
        .map(|r| (r.status.as_u16(), r.body))
        .map_err(|e| format!("GET {e}"))
}

/// Sends a RESP `PING` (with `AUTH` first when a password is given).
pub async fn redis_ping(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let fut = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(b"PING\r\n").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        if reply.starts_with("+PONG") {
            Ok(())
        } else {
            Err(format!("redis at {addr} answered {:?}", reply.trim()))
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("redis at {addr}: no answer within {timeout:?}"))?
}
