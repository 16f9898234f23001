//! `workers = N`: thread-per-core mode through the public `run` entry point.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use stackd_testkit::{eventually, free_addr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_serve_reload_and_drain() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let (listen, admin) = (free_addr(), free_addr());
    let cfg = config(&one_server(a.addr, "workers = 2"), listen, admin);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let shutdown = stackd_common::CancellationToken::new();
    let task = tokio::spawn(stackd_proxy::run(cfg, rx, shutdown.clone()));
    let c = client();
    let url = format!("http://{listen}/");
    eventually("workers listening", Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(listen).await.is_ok()
    })
    .await;
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
    eventually(
        "the reload reaching the workers",
        Duration::from_secs(2),
        || async { get(&c, &url).await.1 == "b" },
    )
    .await;
    let (_, status) = get(&c, &format!("http://{admin}/status")).await;
    assert!(status.contains(&b.addr.to_string()), "{status}");
    let (_, metrics) = get(&c, &format!("http://{admin}/metrics")).await;
    for w in ["0", "1"] {
        let row = format!("stackd_proxy_worker_cpu_seconds_total{{worker=\"{w}\"}} ");
        assert!(
            metrics.contains(&row),
            "no CPU time for worker {w}:\n{metrics}"
        );
    }
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
