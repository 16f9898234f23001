//! `workers = N`: thread-per-core mode through the public `run` entry point.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_serve_reload_and_drain() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let (listen, admin) = (free_port(), free_port());
    let cfg = config(&one_server(a.addr, "workers = 2"), listen, admin);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let shutdown = stackd_common::CancellationToken::new();
    let task = tokio::spawn(stackd_proxy::run(cfg, rx, shutdown.clone()));
    let c = client();
    let url = format!("http://{listen}/");
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "workers never listened");
    for _ in 0..20 {
        assert_eq!(get(&c, &url).await, (StatusCode::OK, "a".to_string()));
    }
    // Many fresh connections: the kernel spreads them over both workers' sockets.
    for _ in 0..20 {
        assert_eq!(get(&client(), &url).await.1, "a");
    }
    tx.send(config(&one_server(b.addr, "workers = 2"), listen, admin))
        .await
        .unwrap();
    let mut switched = false;
    for _ in 0..100 {
        if get(&c, &url).await.1 == "b" {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(switched, "reload did not reach the workers");
    let (_, status) = get(&c, &format!("http://{admin}/status")).await;
    assert!(status.contains(&b.addr.to_string()), "{status}");
    shutdown.cancel();
    let r = tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    assert!(
        tokio::net::TcpStream::connect(listen).await.is_err(),
        "still listening after shutdown"
    );
}
