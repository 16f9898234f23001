//! HTTP/1.1 Upgrade (WebSocket) passes through the proxy as a byte tunnel.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_echoes_both_ways() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "keepalive_timeout = \"300ms\"")).await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nhost: ws.example.com\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
          sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "closed during the handshake: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(buf[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("connection: upgrade"), "{head}");

    // A masked WebSocket text frame "hello"; the backend echoes bytes verbatim.
    let frame = [
        0x81,
        0x85,
        1,
        2,
        3,
        4,
        b'h' ^ 1,
        b'e' ^ 2,
        b'l' ^ 3,
        b'l' ^ 4,
        b'o' ^ 1,
    ];
    for round in 0..3 {
        s.write_all(&frame).await.unwrap();
        let mut back = [0u8; 11];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, frame, "round {round}");
        // Longer than keepalive_timeout: an upgraded tunnel is not an idle HTTP connection.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
