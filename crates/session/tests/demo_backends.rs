//! Two demo backends on one real redis-server, driven over real TCP like a
//! browser behind a round-robin balancer.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::time::Duration;

use redis::Commands;
use stackd_testkit::http::{session_base as base, Browser};
use stackd_testkit::redis::RedisProc;
use support::backend::{config, Backend};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(1800);
const TIMEOUT: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_backends_share_session_login_and_survive_a_backend_loss() {
    let redis = RedisProc::server();
    let mut a = Backend::start(config("nodeA", &redis.url(), TTL, TIMEOUT)).await;
    let b = Backend::start(config("nodeB", &redis.url(), TTL, TIMEOUT)).await;
    let mut browser = Browser::new();

    let mut id = None;
    for i in 1..=10 {
        let be = if i % 2 == 1 { &a } else { &b };
        let r = browser.get(be.addr, "/session").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        for c in &browser.last_set_cookie {
            assert!(c.contains("HttpOnly"), "{c}");
        }
        let v = r.json();
        assert_eq!(v["node"], be.node);
        assert_eq!(v["visits"], i, "visit {i}: {v}");
        assert_eq!(v["user"], serde_json::Value::Null);
        assert_eq!(v["ttl_secs"], 1800);
        assert!(v["created_at"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(
            v["session_id"].as_str().unwrap(),
            format!("{}.{}", base(&v), be.node)
        );
        assert_eq!(
            *id.get_or_insert_with(|| base(&v)),
            base(&v),
            "one session throughout"
        );
        assert_eq!(r.header("x-stackd-node"), Some(be.node.as_str()));
    }
    let old = id.unwrap();

    // Login on A rotates the id, keeps the data; B sees the user.
    let r = browser
        .post_json(a.addr, "/login", r#"{"user":"ann"}"#)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["user"].as_str(), v["visits"].as_i64()),
        (Some("ann"), Some(10)),
        "{v}"
    );
    let new = base(&v);
    assert_ne!(new, old, "login rotates the session id");
    let mut conn = redis.client();
    assert!(
        !conn
            .exists::<_, bool>(format!("stackd:session:{old}"))
            .unwrap(),
        "old key renamed away"
    );
    let v = browser.get(b.addr, "/session").await.unwrap().json();
    assert_eq!(
        (v["user"].as_str(), v["visits"].as_i64(), base(&v)),
        (Some("ann"), Some(11), new.clone())
    );

    // A form login works too (same JSON contract).
    let r = browser
        .send(
            b.addr,
            "POST",
            "/login",
            Some(("application/x-www-form-urlencoded", "user=bob+b")),
        )
        .await
        .unwrap();
    assert_eq!(r.json()["user"], "bob b");

    // A dies: B carries on with everything.
    a.stop().await;
    for i in 12..=14 {
        let v = browser.get(b.addr, "/session").await.unwrap().json();
        assert_eq!(
            (v["user"].as_str(), v["visits"].as_i64()),
            (Some("bob b"), Some(i))
        );
    }
    let page = browser.get(b.addr, "/").await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.body.contains("nodeB") && page.body.contains("bob b") && page.body.contains(">15<"),
        "{}",
        page.body
    );

    // Logout deletes the key and expires the cookie; the next visit is a new session.
    let key = format!(
        "stackd:session:{}",
        browser.cookie.clone().unwrap().split('.').next().unwrap()
    );
    assert!(conn.exists::<_, bool>(&key).unwrap());
    let r = browser.send(b.addr, "POST", "/logout", None).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert!(browser.cookie.is_none());
    assert!(
        !conn.exists::<_, bool>(&key).unwrap(),
        "logout deletes the session in Redis"
    );
    let v = browser.get(b.addr, "/session").await.unwrap().json();
    assert_eq!(
        (v["visits"].as_i64(), &v["user"]),
        (Some(1), &serde_json::Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_two_backends_lose_no_visits() {
    let redis = RedisProc::server();
    let a = Backend::start(config("nodeA", &redis.url(), TTL, TIMEOUT)).await;
    let b = Backend::start(config("nodeB", &redis.url(), TTL, TIMEOUT)).await;
    let mut first = Browser::new();
    first.get(a.addr, "/session").await.unwrap();
    let start = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let mut br = first.clone();
            let addr = if t % 2 == 0 { a.addr } else { b.addr };
            tokio::spawn(async move {
                for _ in 0..25 {
                    let r = br.get(addr, "/session").await.unwrap();
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "200 concurrent session requests on 2 backends took {:?}",
        start.elapsed()
    );
    let v = first.get(b.addr, "/session").await.unwrap().json();
    assert_eq!(v["visits"], 202, "1 + 200 concurrent + this one: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_trouble_is_a_bounded_503_and_recovery_needs_no_restart() {
    let mut redis = RedisProc::server();
    let be = Backend::start(config("nodeA", &redis.url(), TTL, TIMEOUT)).await;
    let mut browser = Browser::new();
    assert_eq!(browser.get(be.addr, "/session").await.unwrap().status, 200);
    assert_eq!(browser.get(be.addr, "/healthz").await.unwrap().status, 200);

    // Hung Redis (SIGSTOP): the request waits at most redis_timeout.
    redis.freeze(true);
    let t = Instant::now();
    let r = browser.get(be.addr, "/session").await.unwrap();
    let hung = t.elapsed();
    redis.freeze(false);
    println!(
        "hung redis: 503 after {hung:?} (redis_timeout {TIMEOUT:?}): {}",
        r.body.trim()
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("session store"), "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        hung >= TIMEOUT - Duration::from_millis(50) && hung < TIMEOUT + Duration::from_millis(1500),
        "{hung:?}"
    );
    // It recovers from the freeze on its own.
    wait_status(&mut browser, be.addr, "/session", 200).await;

    // Redis gone: 503 quickly, /healthz says why, /echo still works.
    redis.stop();
    let t = Instant::now();
    let r = browser.get(be.addr, "/session").await.unwrap();
    println!(
        "stopped redis: 503 after {:?}: {}",
        t.elapsed(),
        r.body.trim()
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(t.elapsed() < TIMEOUT + Duration::from_millis(1500));
    let h = browser.get(be.addr, "/healthz").await.unwrap();
    assert_eq!(h.status, 503);
    assert!(h.body.contains("unavailable"), "{}", h.body);
    assert_eq!(browser.get(be.addr, "/echo").await.unwrap().status, 200);

    // Same port again: the backend reconnects by itself.
    assert!(redis.start(), "redis-server restart on port {}", redis.port);
    let t = Instant::now();
    wait_status(&mut browser, be.addr, "/healthz", 200).await;
    let r = wait_status(&mut browser, be.addr, "/session", 200).await;
    println!("recovered {:?} after the restart", t.elapsed());
    // No persistence in this test Redis: the session is new, and says so.
    assert_eq!(r.json()["visits"], 1);
}

/// Polls `path` until it answers `status` (bounded: 15s).
async fn wait_status(
    b: &mut Browser,
    addr: std::net::SocketAddr,
    path: &str,
    status: u16,
) -> stackd_testkit::http::Reply {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = b.get(addr, path).await.unwrap();
        if r.status == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still {} after 15s: {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_slides_and_expiry_really_deletes_the_key() {
    let redis = RedisProc::server();
    let be = Backend::start(config(
        "nodeA",
        &redis.url(),
        Duration::from_secs(2),
        TIMEOUT,
    ))
    .await;
    let mut browser = Browser::new();
    let v = browser.get(be.addr, "/session").await.unwrap().json();
    assert_eq!(v["ttl_secs"], 2);
    let key = format!("stackd:session:{}", base(&v));
    let mut conn = redis.client();
    for _ in 0..3 {
        let ttl: i64 = conn.ttl(&key).unwrap();
        assert!((1..=2).contains(&ttl), "TTL in seconds, not minutes: {ttl}");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(browser.get(be.addr, "/session").await.unwrap().status, 200);
        // slides
    }
    assert!(
        conn.exists::<_, bool>(&key).unwrap(),
        "3.6s > 2s: alive only because it slid"
    );
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        !conn.exists::<_, bool>(&key).unwrap(),
        "expired key is gone from Redis"
    );
    assert_eq!(conn.ttl::<_, i64>(&key).unwrap(), -2);
    let v = browser.get(be.addr, "/session").await.unwrap().json();
    assert_eq!(v["visits"], 1);
    assert_ne!(
        format!("stackd:session:{}", base(&v)),
        key,
        "a stale cookie never revives its id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_healthz_and_bad_requests() {
    let redis = RedisProc::server();
    let be = Backend::start(config("nodeA", &redis.url(), TTL, TIMEOUT)).await;
    let req = "PUT /echo?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: Yes\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
    let r = stackd_testkit::http::send_async(be.addr, req.as_bytes())
        .await
        .unwrap();
    let v = r.json();
    assert_eq!(
        (
            v["method"].as_str(),
            v["path"].as_str(),
            v["query"].as_str()
        ),
        (Some("PUT"), Some("/echo"), Some("a=1&b=2"))
    );
    assert_eq!(
        (
            v["headers"]["x-mixed-case"].as_str(),
            v["body_len"].as_u64()
        ),
        (Some("Yes"), Some(5))
    );
    assert!(v["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{v}");
    let mut b = Browser::new();
    let h = b.get(be.addr, "/healthz").await.unwrap();
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(b.get(be.addr, "/nope").await.unwrap().status, 404);
    assert_eq!(b.get(be.addr, "/login").await.unwrap().status, 405);
    for bad in [
        r#"{"user":""}"#,
        r#"{"nobody":1}"#,
        "not json",
        r#"{"user":"a\u0007b"}"#,
    ] {
        let r = b.post_json(be.addr, "/login", bad).await.unwrap();
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let huge = format!(r#"{{"user":"{}"}}"#, "x".repeat(20_000));
    assert_eq!(
        b.post_json(be.addr, "/login", &huge).await.unwrap().status,
        413
    );
    // A forged or foreign cookie is ignored, never adopted as an id.
    b.cookie = Some("attacker-chosen-id".into());
    let v = b.get(be.addr, "/session").await.unwrap().json();
    assert_ne!(base(&v), "attacker-chosen-id");
    assert_eq!(v["visits"], 1);

    let m = b.get(be.addr, "/metrics").await.unwrap();
    assert_eq!(m.status, 200);
    let line = m
        .body
        .lines()
        .find(|l| {
            l.starts_with("stackd_demo_requests_total")
                && l.contains("route=\"/login\",status=\"400\"")
        })
        .unwrap_or_else(|| panic!("{}", m.body));
    assert!(
        line.contains("node=\"nodeA\"") && line.ends_with(" 4"),
        "{line}"
    );
    assert!(
        m.body.contains("stackd_demo_session_seconds_count"),
        "{}",
        m.body
    );
}
