//! A tiny HTTP/1.1 client over real TCP, with a one-cookie jar, for driving
//! demo backends the way a browser would (Connection: close, no pooling, so
//! every request is a fresh connection the balancer could route anywhere).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, Vec<String>>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// A browser: remembers the session cookie it was given.
#[derive(Default, Clone)]
pub struct Browser {
    pub cookie: Option<String>,
    pub cookie_name: String,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            cookie: None,
            cookie_name: "SESSIONID".into(),
        }
    }

    pub async fn get(&mut self, addr: SocketAddr, path: &str) -> Reply {
        self.send(addr, "GET", path, None).await
    }

    pub async fn post_json(&mut self, addr: SocketAddr, path: &str, body: &str) -> Reply {
        self.send(addr, "POST", path, Some(("application/json", body)))
            .await
    }

    pub async fn send(
        &mut self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> Reply {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if let Some(c) = &self.cookie {
            req.push_str(&format!("Cookie: other=1; {}={c}\r\n", self.cookie_name));
        }
        if let Some((ct, b)) = body {
            req.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        let reply = raw_request(addr, &req).await;
        for sc in reply.headers.get("set-cookie").into_iter().flatten() {
            let v = sc
                .split(';')
                .next()
                .unwrap_or("")
                .split_once('=')
                .map(|(_, v)| v.to_owned())
                .unwrap_or_default();
            assert!(sc.contains("HttpOnly"), "{sc}");
            self.cookie = if v.is_empty() { None } else { Some(v) };
        }
        reply
    }
}

/// Sends `req` as is and reads the whole answer (10s bound).
pub async fn raw_request(addr: SocketAddr, req: &str) -> Reply {
    let work = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("HTTP request hung for 10s");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers
                .entry(k.trim().to_ascii_lowercase())
                .or_default()
                .push(v.trim().to_owned());
        }
    }
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}
