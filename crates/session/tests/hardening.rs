//! The demo backend under abuse, against a real redis-server and real TCP:
//! a flood of cookieless requests leaves no long-lived keys, slow clients
//! are cut at the header and body timeouts, bodies have limits, and the
//! public `/healthz` says nothing about where the store is.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use stackd_testkit::http::{get_async, send_async, Browser, Conn};
use stackd_testkit::redis::RedisProc;
use support::backend::{config, Backend};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(1800);
const TIMEOUT: Duration = Duration::from_secs(2);

/// Every key of the server and its TTL in seconds (`SCAN` + `TTL`).
fn ttls(redis: &RedisProc) -> Vec<(String, i64)> {
    let mut conn = redis.client();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    keys.into_iter()
        .map(|k| {
            let t: i64 = redis::cmd("TTL").arg(&k).query(&mut conn).unwrap();
            (k, t)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_anonymous_requests_leave_no_long_lived_keys() {
    let redis = RedisProc::server();
    let a = Backend::start(config("nodeA", &redis.url(), TTL, TIMEOUT)).await;
    let b = Backend::start(config("nodeB", &redis.url(), TTL, TIMEOUT)).await;

    // A browser starts a session, like a person would.
    let mut browser = Browser::new();
    let first = browser.get(a.addr, "/session").await.unwrap().json();
    assert_eq!(first["visits"], 1);

    // 1,000 requests without a cookie (crawlers, a flood), 4 at a time.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let addr = if w % 2 == 0 { a.addr } else { b.addr };
        tasks.push(tokio::spawn(async move {
            for i in 0..250 {
                let path = if i % 2 == 0 { "/" } else { "/session" };
                let r = get_async(addr, path).await.unwrap();
                assert_eq!(r.status, 200, "{}", r.body);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // The browser keeps counting across nodes as before.
    for (i, be) in [&b, &a, &b].into_iter().enumerate() {
        let v = browser.get(be.addr, "/session").await.unwrap().json();
        assert_eq!(v["visits"], i as i64 + 2, "{v}");
    }

    let all = ttls(&redis);
    let long: Vec<_> = all.iter().filter(|(_, t)| *t > 60).collect();
    println!(
        "after 1,000 anonymous requests: {} keys, {} with a TTL over 60 s",
        all.len(),
        long.len()
    );
    assert!(
        all.len() >= 1000,
        "each anonymous request did get a session"
    );
    assert!(
        all.iter().all(|(_, t)| *t > 0),
        "every key expires: {all:?}"
    );
    assert_eq!(
        long.len(),
        1,
        "only the browser's session lives long: {long:?}"
    );
    let sid = stackd_testkit::http::session_base(&first);
    assert!(
        long[0].0.ends_with(&sid),
        "{long:?} is not the browser's {sid}"
    );
}

#[tokio::test]
async fn slow_clients_are_cut_at_the_header_and_body_timeouts() {
    let mut cfg = config("nodeA", "memory://", TTL, TIMEOUT);
    cfg.client_header_timeout = Duration::from_millis(600);
    cfg.client_body_timeout = Duration::from_millis(600);
    let be = Backend::start(cfg).await;

    // Slowloris: a header byte every 200 ms never completes the head.
    for trickle in [true, false] {
        let mut c = Conn::connect(be.addr).await.unwrap();
        let t0 = Instant::now();
        c.write(b"GET /session HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let closed = loop {
            assert!(t0.elapsed() < Duration::from_secs(5), "never closed");
            if trickle && c.write(b"X").await.is_err() {
                break t0.elapsed();
            }
            if c.closed_within(Duration::from_millis(200)).await {
                break t0.elapsed();
            }
        };
        println!("slowloris (trickle={trickle}) closed after {closed:?}");
        assert!(
            closed >= Duration::from_millis(500) && closed < Duration::from_millis(1500),
            "trickle={trickle}: closed after {closed:?}"
        );
    }

    // A keep-alive connection idle after its answer is closed too.
    let mut c = Conn::connect(be.addr).await.unwrap();
    c.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(c.reply(Duration::from_secs(2)).await.unwrap().status, 200);
    assert!(
        c.closed_within(Duration::from_millis(1500)).await,
        "idle keep-alive closed"
    );

    // A body that stops half way: 408 within the body timeout.
    let mut c = Conn::connect(be.addr).await.unwrap();
    let t0 = Instant::now();
    c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let r = c.reply(Duration::from_secs(3)).await.unwrap();
    assert_eq!(r.status, 408, "{}", r.body);
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    assert!(c.closed_within(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn bodies_have_limits() {
    let mut cfg = config("nodeA", "memory://", TTL, TIMEOUT);
    cfg.client_max_body_size = stackd_common::config::ByteSize(1024);
    let be = Backend::start(cfg).await;
    let post = |path: &str, len: usize| {
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{}", "x".repeat(len))
    };
    let r = send_async(be.addr, post("/echo", 1024).as_bytes())
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["body_len"].as_u64()), (200, Some(1024)));
    let r = send_async(be.addr, post("/echo", 1025).as_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    // Declared too large: refused before the body is read.
    let head =
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n";
    let r = send_async(be.addr, head.as_bytes()).await.unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    // Chunked, so only counting can tell: /login stops at 16k.
    let chunk = "y".repeat(8000);
    let mut req = String::from("POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for _ in 0..3 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    let r = send_async(be.addr, req.as_bytes()).await.unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
}

#[tokio::test]
async fn healthz_does_not_say_where_the_store_is_or_who_we_are() {
    let port = stackd_testkit::free_port();
    // A '/' in a password breaks the URL; the error still hides it.
    let bad = format!("redis://stackd:s3cr/et@127.0.0.1:{port}/0");
    let e = stackd_session::open_store(&bad, "t:", TIMEOUT)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("stackd:***@") && !e.contains("s3cr"), "{e}");

    let url = format!("redis://stackd:s3cret@127.0.0.1:{port}/0");
    let be = Backend::start(config("nodeA", &url, TTL, Duration::from_millis(300))).await;
    let r = get_async(be.addr, "/healthz").await.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    for secret in ["127.0.0.1", "stackd", "s3cr", &port.to_string()] {
        assert!(!r.body.contains(secret), "{secret:?} in {:?}", r.body);
    }
    let redis = RedisProc::server();
    let ok = Backend::start(config("nodeB", &redis.url(), TTL, TIMEOUT)).await;
    let r = get_async(ok.addr, "/healthz").await.unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "ok: session store answers\n")
    );
}
