//! The proxy against real backends on loopback.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use stackd_testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_across_two_backends() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let p = Proxy::start(&two_servers(a.addr, b.addr, "")).await;
    let c = client();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (status, body) = get(&c, &p.url("/")).await;
        assert_eq!(status, StatusCode::OK);
        seen.push(body);
    }
    assert_eq!(seen.iter().filter(|s| *s == "a").count(), 5, "{seen:?}");
    assert_eq!(seen.iter().filter(|s| *s == "b").count(), 5, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "interleaved: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_and_host_kept() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let c = client();
    let req = Request::get(p.url("/echo"))
        .header("host", "test.example.com:8080")
        .header("x-forwarded-for", "6.6.6.6")
        .header("connection", "x-drop-me")
        .header("x-drop-me", "1")
        .header("cookie", "SESSIONID=abc.n1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    println!("{body}");
    assert!(body.contains("host: test.example.com:8080\n"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 127.0.0.1\n"),
        "untrusted XFF replaced: {body}"
    );
    assert!(body.contains("x-real-ip: 127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(
        body.contains("x-forwarded-host: test.example.com:8080\n"),
        "{body}"
    );
    assert!(
        body.contains("forwarded: for=127.0.0.1;host=\"test.example.com:8080\";proto=http\n"),
        "{body}"
    );
    assert!(body.contains("cookie: SESSIONID=abc.n1\n"), "{body}");
    assert!(
        !body.contains("x-drop-me"),
        "hop-by-hop named in Connection: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_rewritten_to_client_host() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let c = client();
    let req = Request::get(p.url("/redirect"))
        .header("host", "shop.example.com:8443")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        resp.headers()["location"],
        "http://shop.example.com:8443/landed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_costs_no_failed_get() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let p = Proxy::start(&two_servers(a.addr, b.addr, "")).await;
    let c = client();
    let mut failures = 0;
    let mut after_kill = Vec::new();
    for i in 0..200 {
        if i == 50 {
            a.kill();
        }
        let (status, body) = get(&c, &p.url("/")).await;
        if status != StatusCode::OK {
            failures += 1;
        }
        if i > 50 {
            after_kill.push(body);
        }
    }
    assert_eq!(failures, 0);
    assert!(after_kill.iter().all(|b| b == "b"));
    let (_, status) = get(&c, &format!("http://{}/status", p.admin)).await;
    println!("{status}");
    assert!(status.contains("\"up\": false"), "{status}");
}

/// Idle upstream connections to `server`, as `/status` shows them.
async fn idle_to(c: &HttpClient, p: &Proxy, server: std::net::SocketAddr) -> u64 {
    let (_, status) = get(c, &format!("http://{}/status", p.admin)).await;
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    v["upstreams"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addr"] == server.to_string())
        .and_then(|s| s["idle_connections"].as_u64())
        .unwrap_or_else(|| panic!("no idle_connections for {server}:\n{status}"))
}

/// A backend that stops leaves no idle connection behind: those it closed
/// are closed within about a second (nginx closes them at once), not at
/// `upstream_keepalive_timeout`, and `/status` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backends_idle_connections_are_closed() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let c = client();
    for _ in 0..4 {
        assert_eq!(get(&c, &p.url("/")).await.0, StatusCode::OK);
    }
    // The connection goes back to the pool once the response is finished,
    // which can come just after the client read it.
    eventually("a connection kept idle", Duration::from_secs(5), || async {
        idle_to(&c, &p, a.addr).await >= 1
    })
    .await;
    a.kill_and_wait().await;
    eventually(
        "the stopped backend's idle connections closed",
        Duration::from_secs(5),
        || async { idle_to(&c, &p, a.addr).await == 0 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_down_is_502_then_503() {
    let dead1 = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead2 = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = Proxy::start(&two_servers(dead1, dead2, "")).await;
    let c = client();
    let (status, body) = get(&c, &p.url("/")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.starts_with("502"), "{body}");
    // Both are now marked down (max_fails = 1): a clear 503, not a hang.
    let (status, body) = get(&c, &p.url("/")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_504() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "read_timeout = \"300ms\"")).await;
    let (status, body) = get(&client(), &p.url("/slow")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limits_413() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "client_max_body_size = \"1k\"")).await;
    let c = client();
    // Declared too large: refused before reading.
    let req = Request::post(p.url("/echo"))
        .body(Full::new(Bytes::from(vec![b'x'; 2048])))
        .unwrap();
    let (status, body) = send(&c, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Within the limit: forwarded.
    let req = Request::post(p.url("/echo"))
        .body(Full::new(Bytes::from(vec![b'x'; 1000])))
        .unwrap();
    let (status, body) = send(&c, req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("body_len: 1000"), "{body}");
    // Chunked (no Content-Length) and crossing the limit while streaming.
    let chunk = "400\r\n".to_string() + &"y".repeat(1024) + "\r\n";
    let raw_req = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    let out = raw(p.addr, raw_req.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_limits_431() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "max_header_size = \"4k\"")).await;
    let big = "b".repeat(6000);
    let out = raw(
        p.addr,
        format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    let huge = "b".repeat(20_000);
    let out = raw(
        p.addr,
        format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {huge}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    let out = raw(
        p.addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_gets_408_and_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "client_header_timeout = \"500ms\"")).await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let started = tokio::time::Instant::now();
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            // Keep dribbling bytes like a slowloris client.
            let _ = s.write_all(b"x-a: b\r\n").await;
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "connection was not closed");
    let out = String::from_utf8_lossy(&out);
    println!("slowloris closed after {:?}", started.elapsed());
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404_and_metrics_count() {
    let a = Backend::start("a").await;
    let toml = format!(
        r#"
[proxy]
listen = ["{{listen}}"]
admin = "{{admin}}"
[[proxy.upstream]]
name = "app"
servers = [ {{ addr = "{}" }} ]
[[proxy.route]]
host = "app.example.com"
path = "/"
upstream = "app"
"#,
        a.addr
    );
    let p = Proxy::start(&toml).await;
    let c = client();
    let (status, _) = get(&c, &p.url("/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let req = Request::get(p.url("/"))
        .header("host", "app.example.com")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = send(&c, req).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a"));
    // The proxy counts a request once it has finished it, which can come
    // just after the client has read the answer.
    let url = format!("http://{}/metrics", p.admin);
    eventually("both requests counted", Duration::from_secs(5), || async {
        let (_, m) = get(&c, &url).await;
        m.contains("stackd_proxy_request_duration_seconds_count{upstream=\"app\"} 1")
            && m.contains("stackd_proxy_request_duration_seconds_count{upstream=\"\"} 1")
    })
    .await;
    let (_, metrics) = get(&c, &url).await;
    println!("{metrics}");
    assert!(
        metrics.contains("stackd_proxy_requests_total{upstream=\"app\",code=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stackd_proxy_requests_total{upstream=\"\",code=\"404\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stackd_proxy_request_duration_seconds_count{upstream=\"app\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stackd_proxy_upstream_server_up{upstream=\"app\",server=\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_pooled() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let c = client();
    for _ in 0..50 {
        assert_eq!(get(&c, &p.url("/")).await.0, StatusCode::OK);
    }
    let conns = a.conns.load(std::sync::atomic::Ordering::Relaxed);
    println!("50 sequential requests used {conns} upstream connection(s)");
    assert!(
        conns <= 2,
        "{conns} upstream connections for 50 sequential requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_retried_when_nothing_was_sent() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a = Backend::start("a").await;
    // The dead server is first, so the first pick fails to connect.
    let p = Proxy::start(&two_servers(dead, a.addr, "")).await;
    let c = client();
    for _ in 0..2 {
        let req = Request::post(p.url("/echo"))
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap();
        let (status, body) = send(&c, req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("body_len: 5"),
            "the body survived the retry: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_gets_408() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "client_body_timeout = \"300ms\"")).await;
    let out = raw(
        p.addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten b",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge() {
    use http_body_util::{BodyExt, Empty};
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "client_max_body_size = \"1k\"")).await;
    let mut tx = h2c(p.addr).await;
    let req = Request::get(format!("http://h2c.example.com:{}/echo", p.addr.port()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains(&format!("host: h2c.example.com:{}\n", p.addr.port())),
        "{body}"
    );
    // Bodies on streams: without a length (chunked upstream), and over the limit.
    let tx2 = h2c(p.addr).await;
    for (len, want) in [
        (700usize, StatusCode::OK),
        (3000, StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let mut tx2 = tx2.clone();
        let body =
            http_body_util::StreamBody::new(futures::stream::iter((0..len / 100).map(|_| {
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![
                    b'x';
                    100
                ])))
            })));
        let req = Request::post(format!("http://h2c.example.com:{}/echo", p.addr.port()))
            .body(body)
            .unwrap();
        let resp = tx2.send_request(req).await.unwrap();
        assert_eq!(resp.status(), want, "{len} bytes");
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if want == StatusCode::OK {
            assert!(String::from_utf8_lossy(&text).contains(&format!("body_len: {len}\n")));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keepalive_is_closed_after_keepalive_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "keepalive_timeout = \"400ms\"")).await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    // Requests 150 ms apart keep the connection alive past the timeout.
    for _ in 0..5 {
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Then silence: the proxy closes it (EOF), well within 10 s.
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    println!("idle keep-alive closed after {:?}", started.elapsed());
    assert_eq!(n, 0, "expected EOF, got {:?}", &buf[..n]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_then_parked_connection_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    async fn read_responses(s: &mut tokio::net::TcpStream, n: usize) -> String {
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while got.matches("HTTP/1.1 200").count() < n {
            let k = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("responses in time")
                .unwrap();
            assert!(k > 0, "EOF after {got:?}");
            got.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
        got
    }
    // Two pipelined requests and half of a third: all answered, in order.
    s.write_all(b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\nGET /3 HTTP/1.1\r\nho")
        .await
        .unwrap();
    read_responses(&mut s, 2).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.write_all(b"st: x\r\n\r\n").await.unwrap();
    read_responses(&mut s, 1).await;
    // Idle well past the parking delay, then reused: served by a fresh hyper connection.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.write_all(b"GET /again HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        read_responses(&mut s, 1).await;
    }
}

/// HTTP/1 details our codec handles itself: chunked bodies both ways,
/// `Expect: 100-continue`, HEAD, HTTP/1.0 clients, pipelining after a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_semantics_through_our_codec() {
    use stackd_testkit::http::{self as th, Conn};
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    // A chunked upload arrives whole (re-chunked upstream).
    let r = th::send_async(
        p.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nx-trailer: 1\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(r.body.contains("body_len: 7"), "{r:?}");
    assert!(
        !r.body.contains("x-trailer") && !r.body.contains("transfer-encoding: chunked, "),
        "{r:?}"
    );
    // Expect: 100-continue gets the interim answer before the body is sent.
    let mut c = Conn::connect(p.addr).await.unwrap();
    c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_exact(c.stream(), &mut interim),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    // Pipelined: the body, then the next request right behind it.
    c.write(b"helloGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = c.reply(Duration::from_secs(5)).await.unwrap();
    assert!(
        first.body.contains("body_len: 5") && !first.body.contains("expect"),
        "{first:?}"
    );
    let second = c.reply(Duration::from_secs(5)).await.unwrap();
    assert_eq!(second.status, 200, "{second:?}");
    // HEAD: the length of what GET would send, and no body.
    let out = th::exchange(
        p.addr,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        out.contains("content-length: 1\r\n") && out.ends_with("\r\n\r\n"),
        "{out:?}"
    );
    // HTTP/1.0: no chunking; keep-alive only when asked for.
    let out = th::exchange(
        p.addr,
        b"GET /echo HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("connection: close\r\n"),
        "{out}"
    );
    assert!(
        out.contains("host: app\n"),
        "the upstream's name stands in for a missing Host: {out}"
    );
    let mut k = Conn::connect(p.addr).await.unwrap();
    k.write(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let r = k.reply(Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"), "{r:?}");
    assert!(
        !k.closed_within(Duration::from_millis(300)).await,
        "kept alive"
    );
}

/// A chunked upstream response reaches an HTTP/1.1 client chunked and an
/// HTTP/1.0 client delimited by the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upstream_answers_both_client_versions() {
    use stackd_testkit::backend::Scripted;
    use stackd_testkit::http as th;
    let b = Scripted::answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            .to_vec(),
    );
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let r = th::send_async(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(
        (r.header("transfer-encoding"), r.body.as_str()),
        (Some("chunked"), "hello world")
    );
    let out = th::exchange(p.addr, b"GET / HTTP/1.0\r\n\r\n", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        out.ends_with("\r\n\r\nhello world") && !out.contains("chunked"),
        "{out:?}"
    );
}

/// The chunks that one read from the upstream brings go to the client
/// together, as one chunk in one write, not a chunk and a system call each
/// (Tomcat sends 8 KiB chunks: a 1 MiB page is 128 of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_read_together_are_passed_on_together() {
    use stackd_testkit::backend::Scripted;
    use stackd_testkit::http as th;
    // A hundred 100-byte chunks, each told apart by its last byte.
    let chunks: Vec<String> = (0..100u8)
        .map(|i| {
            format!(
                "{}{}",
                &"0123456789".repeat(10)[..99],
                char::from(b'a' + i % 26)
            )
        })
        .collect();
    let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for c in &chunks {
        answer.extend_from_slice(format!("{:x}\r\n{c}\r\n", c.len()).as_bytes());
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    let b = Scripted::answering(answer);
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let raw = th::exchange(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let (body, sent) = dechunk(&raw);
    assert_eq!(body, chunks.concat(), "every chunk's bytes, in order");
    assert!(
        sent <= 4,
        "{} upstream chunks went out as {sent} chunks; one read's worth should go as one",
        chunks.len()
    );
}

/// The chunked body in `wire` (a head, then the body): its bytes joined,
/// and how many chunks it came in.
fn dechunk(wire: &str) -> (String, usize) {
    let chunks = stackd_testkit::http::chunks_of(wire.as_bytes()).unwrap();
    (String::from_utf8(chunks.concat()).unwrap(), chunks.len())
}

/// The chunks one read from the client brings go upstream as one chunk:
/// 600 one-byte chunks are six bytes on the wire for each byte of body,
/// and passed on one by one they would cost a system call and a TCP
/// segment to the upstream each, a flood the client pays little for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_tiny_chunks_go_upstream_together() {
    let body: String = (0..600u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let pieces: Vec<String> = body.chars().map(String::from).collect();
    let (passed, chunks) = upload_in_chunks(&pieces).await;
    assert_eq!(passed, body, "every byte, in order");
    assert!(
        chunks <= 4,
        "{} client chunks went upstream as {chunks} chunks; one read's worth should go as one",
        body.len()
    );
}

/// A body comes from the client in reads of up to 64 KiB, each passed on
/// in one write: 64 KiB in 4 KiB chunks (Java's chunked streaming mode)
/// reaches the upstream as a few chunks, not sixteen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_read_and_passed_on_in_large_pieces() {
    let chunk: String = "0123456789abcdef".repeat(256);
    let (passed, chunks) = upload_in_chunks(&vec![chunk.clone(); 16]).await;
    assert_eq!(passed, chunk.repeat(16), "every byte, in order");
    // The first read is the head's (4 KiB); 16 KiB reads would make five.
    assert!(chunks <= 3, "64 KiB went upstream as {chunks} chunks");
}

/// The same over HTTP/2: DATA frames that arrive together go upstream as
/// one chunk, not a chunk each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_clients_tiny_frames_go_upstream_together() {
    let (b, got) = recording_upstream();
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let mut tx = h2c(p.addr).await;
    let body: Vec<u8> = (0..600u32).map(|i| b'a' + (i % 26) as u8).collect();
    let frames = body.clone().into_iter().map(|byte| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![byte])))
    });
    let req = Request::post(format!("http://x:{}/up", p.addr.port()))
        .body(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (passed, chunks) = dechunk(&got.wire());
    assert_eq!(passed.as_bytes(), body, "every byte, in order");
    // The client writes its frames as its connection task gets to them, so
    // how many arrive in one read varies; one chunk a frame is 600.
    assert!(
        chunks <= 60,
        "{} DATA frames went upstream as {chunks} chunks",
        body.len()
    );
}

/// Posts `pieces` as the chunks of one request, sent in one write, through
/// a proxy to [`recording_upstream`]; the body the upstream got, and in
/// how many chunks.
async fn upload_in_chunks(pieces: &[String]) -> (String, usize) {
    use stackd_testkit::http as th;
    let mut request =
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for piece in pieces {
        request.extend_from_slice(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (b, got) = recording_upstream();
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let raw = th::exchange(p.addr, &request, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    dechunk(&got.wire())
}

/// An HTTP/2 connection to `addr` without TLS (prior knowledge), its
/// driver spawned.
async fn h2c<B>(addr: std::net::SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tx, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx
}

/// What an upstream received, for tests that read the wire.
#[derive(Clone, Default)]
struct Received(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Received {
    fn wire(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// An upstream that reads one request with a chunked body (up to its last
/// chunk, at most 5 s), keeps what it read, and answers 200.
fn recording_upstream() -> (stackd_testkit::backend::Scripted, Received) {
    use std::io::{Read, Write};
    let got = Received::default();
    let seen = got.clone();
    let b = stackd_testkit::backend::Scripted::start(move |mut conn| {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut wire = Vec::new();
        let mut buf = [0u8; 4096];
        while !wire.ends_with(b"\r\n0\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(n) if n > 0 => wire.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        seen.0.lock().unwrap().extend_from_slice(&wire);
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    });
    (b, got)
}
