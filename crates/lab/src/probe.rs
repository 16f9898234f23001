//! Small, bounded probes the lab uses to wait for components and to fill
//! its status page: an HTTP GET and a Redis PING.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A shared HTTP/1.1 client for probes.
pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// GETs `url`; returns the status and body, or a short reason.
pub async fn get(
    client: &HttpClient,
    url: &str,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let fut = async {
        let resp = client
            .get(uri)
            .await
            .map_err(|e| format!("GET {url}: {}", chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("GET {url}: reading body: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("GET {url}: no answer within {timeout:?}"))?
}

/// An error with its causes, so "client error (Connect)" says why:
/// "client error (Connect): tcp connect error: Connection refused (os error 111)".
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
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
