//! Idle client connections in the lot: a keep-alive connection idle for
//! 250 ms leaves its task (`stackd_proxy_client_connections_parked` counts
//! it) and must still be served, timed out, freed and drained exactly as
//! one that kept its task. Real clients on real sockets, a real proxy on
//! loopback; every wait bounded.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use common::*;
use stackd_testkit::http::{self as th, Conn};
use stackd_testkit::wait::eventually;

const SECOND: Duration = Duration::from_secs(1);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

/// Waits until `name` reads `want`.
async fn metric_reaches(p: &Proxy, name: &str, want: f64) {
    eventually(&format!("{name} = {want}"), 5 * SECOND, || async move {
        metric(p, name).await == want
    })
    .await;
}

/// `n` connections that have each been served one request.
async fn served(p: &Proxy, n: usize) -> Vec<Conn> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.write(REQUEST).await.unwrap();
        assert_eq!(c.reply(5 * SECOND).await.unwrap().status, 200);
        conns.push(c);
    }
    conns
}

const PARKED: &str = "stackd_proxy_client_connections_parked";
const OPEN: &str = "stackd_proxy_client_connections";

/// Parked connections are served again, whole requests or heads that
/// arrive in pieces, and park again once idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_connections_serve_their_next_requests_and_park_again() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "keepalive_timeout = \"30s\"")).await;
    let mut conns = served(&p, 20).await;
    metric_reaches(&p, PARKED, 20.0).await;
    for (i, c) in conns.iter_mut().enumerate() {
        if i % 2 == 0 {
            c.write(REQUEST).await.unwrap();
        } else {
            // Half a head wakes the connection; the rest follows later.
            c.write(&REQUEST[..10]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            c.write(&REQUEST[10..]).await.unwrap();
        }
        let r = c.reply(5 * SECOND).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "a"), "connection {i}");
    }
    metric_reaches(&p, PARKED, 20.0).await;
    assert_eq!(metric(&p, OPEN).await, 20.0);
}

/// A parked connection is closed at `keepalive_timeout`, counted under
/// that timer, and its slot is freed; one that never sent a byte is closed
/// at `client_header_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_connections_are_closed_at_their_deadlines_and_counted() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(
        a.addr,
        "keepalive_timeout = \"1s\"\nclient_header_timeout = \"1500ms\"",
    ))
    .await;
    let mut idle = served(&p, 3).await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(Conn::connect(p.addr).await.unwrap());
    }
    metric_reaches(&p, PARKED, 5.0).await;
    for (i, c) in idle.iter_mut().chain(silent.iter_mut()).enumerate() {
        assert!(
            c.closed_within(4 * SECOND).await,
            "parked connection {i} still open 4 s after its deadline of 1-1.5 s"
        );
    }
    metric_reaches(&p, OPEN, 0.0).await;
    assert_eq!(metric(&p, PARKED).await, 0.0);
    let m = th::get_async(p.admin, "/metrics").await.unwrap().body;
    for (timer, n) in [("keepalive_timeout", 3), ("client_header_timeout", 2)] {
        let line = format!("stackd_proxy_client_timeouts_total{{timer=\"{timer}\"}} {n}");
        assert!(m.contains(&line), "{line} not in:\n{m}");
    }
}

/// A client that closes a parked connection frees its `max_connections`
/// slot at once, without waiting for the keep-alive timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_closing_a_parked_connection_frees_its_slot() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(
        a.addr,
        "max_connections = 2\nkeepalive_timeout = \"60s\"",
    ))
    .await;
    let conns = served(&p, 2).await;
    metric_reaches(&p, PARKED, 2.0).await;
    drop(conns);
    metric_reaches(&p, OPEN, 0.0).await;
    assert_eq!(metric(&p, PARKED).await, 0.0);
    let mut again = served(&p, 2).await;
    again[0].write(REQUEST).await.unwrap();
    assert_eq!(again[0].reply(5 * SECOND).await.unwrap().status, 200);
}

/// Shutting down closes parked connections in the drain, long before their
/// keep-alive timeout, and the server finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_closes_parked_connections() {
    let a = Backend::start("a").await;
    let mut p = Proxy::start(&one_server(a.addr, "keepalive_timeout = \"60s\"")).await;
    let mut conns = served(&p, 3).await;
    metric_reaches(&p, PARKED, 3.0).await;
    p.shutdown.cancel();
    for (i, c) in conns.iter_mut().enumerate() {
        assert!(
            c.closed_within(5 * SECOND).await,
            "parked connection {i} still open 5 s into the drain"
        );
    }
    let task = p.task.take().unwrap();
    let ended = tokio::time::timeout(5 * SECOND, task).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "the server did not finish: {ended:?}"
    );
}
