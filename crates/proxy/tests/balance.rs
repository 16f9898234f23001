//! Balancing policies and health through the real proxy.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use stackd_testkit::eventually;

fn upstream(servers: &str, extra: &str) -> String {
    format!(
        r#"
[proxy]
listen = ["{{listen}}"]
admin = "{{admin}}"
access_log = "off"

[[proxy.upstream]]
name = "app"
servers = [ {servers} ]
{extra}

[[proxy.route]]
path = "/"
upstream = "app"
"#
    )
}

async fn get_with_cookie(c: &HttpClient, url: &str, cookie: &str) -> (StatusCode, String) {
    let req = Request::get(url)
        .header("cookie", cookie)
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(c, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_follows_the_cookie_and_falls_back() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let servers = format!(
        "{{ addr = \"{}\", node_id = \"137server1\" }}, {{ addr = \"{}\", node_id = \"139server2\" }}",
        a.addr, b.addr
    );
    let p = Proxy::start(&upstream(&servers, "balance = \"sticky\"")).await;
    let c = client();
    for _ in 0..6 {
        let (_, body) =
            get_with_cookie(&c, &p.url("/"), "x=1; SESSIONID=0123abcd.139server2").await;
        assert_eq!(body, "b");
    }
    b.kill_and_wait().await;
    for _ in 0..6 {
        let (status, body) =
            get_with_cookie(&c, &p.url("/"), "SESSIONID=0123abcd.139server2").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "a"),
            "falls back without an error"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_hash_keeps_a_client_on_one_server() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let servers = format!("{{ addr = \"{}\" }}, {{ addr = \"{}\" }}", a.addr, b.addr);
    let p = Proxy::start(&upstream(&servers, "balance = \"ip_hash\"")).await;
    let c = client();
    let (_, first) = get(&c, &p.url("/")).await;
    for _ in 0..10 {
        assert_eq!(get(&c, &p.url("/")).await.1, first);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_only_when_primaries_are_down() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let servers = format!(
        "{{ addr = \"{}\" }}, {{ addr = \"{}\", backup = true }}",
        a.addr, b.addr
    );
    let p = Proxy::start(&upstream(&servers, "")).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(get(&c, &p.url("/")).await.1, "a");
    }
    a.kill_and_wait().await;
    for _ in 0..5 {
        let (status, body) = get(&c, &p.url("/")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "b"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_conn_avoids_the_busy_server() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let servers = format!("{{ addr = \"{}\" }}, {{ addr = \"{}\" }}", a.addr, b.addr);
    let p = Proxy::start(&upstream(&servers, "balance = \"least_conn\"")).await;
    let c = client();
    // Two slow requests occupy both servers once each; then one more makes a server busier.
    let slow_url = p.url("/slow");
    let c2 = c.clone();
    let slow = tokio::spawn(async move { get(&c2, &slow_url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = if a.hits.load(Ordering::Relaxed) == 1 {
        "a"
    } else {
        "b"
    };
    for _ in 0..6 {
        let (_, body) = get(&c, &p.url("/")).await;
        assert_ne!(
            body, busy,
            "least_conn sent a request to the server with one in flight"
        );
    }
    assert_eq!(slow.await.unwrap().0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_take_a_server_out_and_back() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let servers = format!("{{ addr = \"{}\" }}, {{ addr = \"{}\" }}", a.addr, b.addr);
    let health = "health = { path = \"/healthz\", interval = \"50ms\", timeout = \"500ms\", fall = 2, rise = 2 }";
    let p = Proxy::start(&upstream(&servers, health)).await;
    let c = client();
    a.sick.store(true, Ordering::Relaxed);
    // fall = 2 at 50 ms: give it up to 5 s on a loaded machine.
    let status_url = format!("http://{}/status", p.admin);
    eventually(
        "a marked down by its health check",
        Duration::from_secs(5),
        || async {
            get(&c, &status_url)
                .await
                .1
                .contains("\"active_health_up\": false")
        },
    )
    .await;
    let (_, status) = get(&c, &status_url).await;
    assert!(status.contains("\"last_check_ok\": false"), "{status}");
    // What an operator reads to learn why, without the logs.
    assert!(
        status.contains("\"error\": \"GET /healthz answered 503 Service Unavailable\""),
        "{status}"
    );
    for _ in 0..6 {
        assert_eq!(get(&c, &p.url("/")).await.1, "b");
    }
    a.sick.store(false, Ordering::Relaxed);
    eventually("a back in rotation", Duration::from_secs(5), || async {
        get(&c, &p.url("/")).await.1 == "a"
    })
    .await;
}
