//! Hot reload and graceful shutdown under continuous traffic.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::StatusCode;

/// Client connections the proxy has accepted and not yet closed.
const OPEN: &str = "stackd_proxy_client_connections";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_drops_nothing() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = stackd_common::CancellationToken::new();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (ok, failed, stop, url) = (ok.clone(), failed.clone(), stop.clone(), p.url("/"));
        workers.push(tokio::spawn(async move {
            let c = client();
            let mut seen_b = false;
            while !stop.is_cancelled() {
                let req = http::Request::get(&url)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                match tokio::time::timeout(Duration::from_secs(5), c.request(req)).await {
                    Ok(Ok(r)) if r.status() == StatusCode::OK => {
                        let body = http_body_util::BodyExt::collect(r.into_body())
                            .await
                            .unwrap()
                            .to_bytes();
                        seen_b |= &body[..] == b"b";
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            seen_b
        }));
    }
    // Flip between the two backends several times while requests flow.
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let target = if i % 2 == 0 { b.addr } else { a.addr };
        p.reloads
            .send(p.config(&one_server(target, "")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    // A config whose certificate cannot be read is rejected; the old one keeps serving.
    let bad = format!(
        "{}\n[[proxy.tls]]\ncert = \"/nonexistent.pem\"\nkey = \"/nonexistent.key\"\n",
        one_server(a.addr, "")
    );
    p.reloads.send(p.config(&bad)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let mut any_b = false;
    for w in workers {
        any_b |= w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("reload under load: {ok} ok, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 50, "too few requests to mean anything: {ok}");
    assert!(any_b, "the reload never took effect");
    // Last good config pointed at b.
    let (_, body) = get(&client(), &p.url("/")).await;
    assert_eq!(body, "b");
    let (_, m) = get(&client(), &format!("http://{}/metrics", p.admin)).await;
    assert!(
        m.contains("stackd_proxy_reloads_total{result=\"ok\"} 6"),
        "start + 5 reloads: {m}"
    );
    assert!(
        m.contains("stackd_proxy_reloads_total{result=\"failed\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("stackd_proxy_last_reload_timestamp_seconds "),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests() {
    let a = Backend::start("a").await;
    let mut p = Proxy::start(&one_server(a.addr, "shutdown_grace = \"8s\"")).await;
    let url = p.url("/slow");
    let in_flight = tokio::spawn(async move { get(&client(), &url).await });
    // An idle keep-alive connection, parked by now.
    let mut idle = stackd_testkit::http::Conn::connect(p.addr).await.unwrap();
    idle.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        idle.reply(Duration::from_secs(5)).await.unwrap().status,
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A connection just accepted, its first request not yet sent: the
    // drain must not close it under that request. Connected is not yet
    // accepted (a connection still in the listen backlog is reset when
    // the listener closes), so the drain starts once the proxy counts it.
    let before = metric(&p, OPEN).await;
    let mut fresh = stackd_testkit::http::Conn::connect(p.addr).await.unwrap();
    stackd_testkit::wait::eventually(
        "the proxy accepts the fresh connection",
        Duration::from_secs(5),
        || async { metric(&p, OPEN).await > before },
    )
    .await;
    p.shutdown.cancel();
    assert!(
        idle.closed_within(Duration::from_secs(1)).await,
        "an idle connection outlived the start of the drain"
    );
    // New connections are refused soon after shutdown starts, and the
    // admin listener says so while in-flight requests finish.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = get(&client(), &format!("http://{}/healthz", p.admin)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
    );
    assert!(
        tokio::net::TcpStream::connect(p.addr).await.is_err(),
        "still accepting after shutdown"
    );
    fresh
        .write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = fresh.reply(Duration::from_secs(5)).await;
    let r = r.expect("the request of a connection accepted before the drain was lost");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.closes(),
        "the last response says Connection: close: {r:?}"
    );
    assert!(fresh.closed_within(Duration::from_secs(1)).await);
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "a"),
        "the in-flight request finished"
    );
    let task = p.task.take().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(r.is_ok());
}

/// A connection accepted before the drain that never speaks waits for its
/// first request at most until the grace period ends, not its own
/// deadline (`lingering_timeout`, 5 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_fresh_connection_ends_with_the_grace_period() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "shutdown_grace = \"300ms\"")).await;
    assert_eq!(
        get(&client(), &p.url("/")).await.0,
        StatusCode::OK,
        "serving"
    );
    let mut fresh = stackd_testkit::http::Conn::connect(p.addr).await.unwrap();
    p.shutdown.cancel();
    assert!(
        fresh.closed_within(Duration::from_secs(3)).await,
        "a silent fresh connection outlived shutdown_grace"
    );
}
