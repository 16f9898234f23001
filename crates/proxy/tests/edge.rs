//! The proxy at the edge, tried the way an attacker or a broken peer would:
//! one test per finding of issue #11 ("Proxy core v2"), each a real client
//! on a real socket against a real proxy on loopback, with a misbehaving
//! upstream where the finding needs one.
//!
//! Every wait is bounded; a test that hangs on today's bug fails with a
//! sentence saying what never happened.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use stackd_testkit::backend::Scripted;
use stackd_testkit::http::{self as th, Conn};
use stackd_testkit::wait::poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECOND: Duration = Duration::from_secs(1);

/// A backend that answers `200 ok` as soon as it has a request head, then
/// reads that request's `Content-Length` body and goes on with the next
/// request on the same connection, as a correct HTTP/1.1 server would.
/// Every request line it sees is recorded.
fn head_first_backend() -> (Scripted, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let b = Scripted::start(move |mut c| {
        let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let (head_len, line, body_len) = loop {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(&buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let cl = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                            .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                            .unwrap_or(0usize);
                        let line = format!("{} {}", req.method.unwrap(), req.path.unwrap());
                        break (n, line, cl);
                    }
                    Ok(httparse::Status::Partial) => match c.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    },
                    Err(_) => return,
                }
            };
            log.lock().unwrap().push(line);
            if c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
            buf.drain(..head_len);
            while buf.len() < body_len {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            buf.drain(..body_len);
        }
    });
    (b, seen)
}

/// Writes a WebSocket upgrade for `/upgrade` and reads the response head.
async fn upgrade(s: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    s.write_all(
        b"GET /upgrade HTTP/1.1\r\nhost: ws.example.com\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
          sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .ok()?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b).await {
                Ok(1) => head.push(b[0]),
                _ => return None,
            }
        }
        Some(String::from_utf8_lossy(&head).into_owned())
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

/// Sends `ping` through an echoing tunnel; whether it came back within 2 s.
async fn chat(s: &mut tokio::net::TcpStream) -> bool {
    let fut = async {
        s.write_all(b"ping").await.ok()?;
        let mut back = [0u8; 4];
        s.read_exact(&mut back).await.ok()?;
        Some(back == *b"ping")
    };
    tokio::time::timeout(2 * SECOND, fut).await.ok().flatten() == Some(true)
}

/// Whether `s` is closed by the peer (EOF or reset) within `within`; reads and drops data.
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, wait).await.is_ok()
}

// --- Request desync ---------------------------------------------------------

/// A body whose first part ends in CRLFCRLF, answered early by the upstream:
/// the rest of the body must never reach the backend as a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desync_early_response_never_turns_body_into_a_request() {
    let (b, seen) = head_first_backend();
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let part1 = "a=1\r\n\r\n";
    let part2 = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        part1.len() + part2.len()
    );
    let mut c = Conn::connect(p.addr).await.unwrap();
    c.write(format!("{head}{part1}").as_bytes()).await.unwrap();
    let r = c.reply(5 * SECOND).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = c.write(part2.as_bytes()).await;
    // Whatever the proxy makes of it, give it time to reach the backend.
    let _ = c.closed_within(2 * SECOND).await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|l| l.contains("/smuggled")),
        "the body's tail reached the backend as a request: {seen:?}"
    );
}

// --- Idle lockout -----------------------------------------------------------

/// HTTP/2 connections that send the preface (or the preface and SETTINGS)
/// and then nothing are closed by the header and keep-alive timeouts, so
/// they cannot hold every `max_connections` slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_h2_connections_are_closed_and_cannot_lock_out_clients() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(
        a.addr,
        "max_connections = 4\nclient_header_timeout = \"500ms\"\nkeepalive_timeout = \"500ms\"",
    ))
    .await;
    let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let settings: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
    let mut silent = Vec::new();
    for i in 0..4 {
        let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        s.write_all(preface).await.unwrap();
        if i % 2 == 1 {
            s.write_all(settings).await.unwrap();
        }
        silent.push(s);
    }
    for (i, s) in silent.iter_mut().enumerate() {
        assert!(
            closed_within(s, 5 * SECOND).await,
            "silent h2 connection {i} still open after 5 s"
        );
    }
    let r = tokio::time::timeout(5 * SECOND, th::get_async(p.addr, "/"))
        .await
        .expect("a new client served after the silent ones were closed")
        .unwrap();
    assert_eq!(r.status, 200);
    // The preface alone is an unfinished head; preface + SETTINGS is an idle connection.
    let m = th::get_async(p.admin, "/metrics").await.unwrap().body;
    for timer in ["client_header_timeout", "keepalive_timeout"] {
        assert!(
            m.contains(&format!(
                "stackd_proxy_client_timeouts_total{{timer=\"{timer}\"}} 2"
            )),
            "{timer}: {m}"
        );
    }
}

// --- Slow reader --------------------------------------------------------------

/// A client that asks for a large response and never reads is closed after
/// `client_send_timeout`, and the upstream connection is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads_is_closed_and_the_upstream_released() {
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let b = Scripted::start(move |mut c| {
        let mut buf = Vec::new();
        if !matches!(
            stackd_testkit::backend::read_request(&mut c, &mut buf),
            Ok(Some(_))
        ) {
            return;
        }
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n");
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(1 << 14) {
            if c.write_all(&chunk).is_err() {
                flag.store(true, Ordering::Relaxed);
                return;
            }
        }
    });
    let p = Proxy::start(&one_server(b.addr, "client_send_timeout = \"500ms\"")).await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // Never read. The proxy must give up on us and let the upstream go.
    let took = poll(10 * SECOND, || released.load(Ordering::Relaxed));
    assert!(
        took.is_some(),
        "the upstream was still held 10 s after the client stopped reading"
    );
    assert!(
        closed_within(&mut s, 10 * SECOND).await,
        "the client connection was not closed"
    );
}

// --- WebSocket tunnels --------------------------------------------------------

/// Tunnels hold their `max_connections` slot: with 3 allowed and 3 open, a
/// fourth upgrade waits until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_count_against_max_connections() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "max_connections = 3")).await;
    let mut open = Vec::new();
    for i in 0..3 {
        let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let head = upgrade(&mut s, 5 * SECOND).await;
        assert!(
            head.as_deref()
                .is_some_and(|h| h.starts_with("HTTP/1.1 101")),
            "tunnel {i}: {head:?}"
        );
        open.push(s);
    }
    let mut fourth = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let early = upgrade(&mut fourth, SECOND).await;
    assert!(
        early.is_none(),
        "a fourth tunnel was opened beyond max_connections = 3: {early:?}"
    );
    drop(open.pop());
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    tokio::time::timeout(5 * SECOND, async {
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(fourth.read(&mut b).await.unwrap(), 1, "closed");
            head.push(b[0]);
        }
    })
    .await
    .expect("the fourth tunnel opens once a slot is free");
    assert!(head.starts_with(b"HTTP/1.1 101"));
}

/// A tunnel silent in both directions for `read_timeout` is closed; a busy
/// one lives past it, and is closed at the end of `shutdown_grace`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tunnels_time_out_and_shutdown_closes_busy_ones() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(
        a.addr,
        "read_timeout = \"600ms\"\nshutdown_grace = \"1s\"",
    ))
    .await;
    let mut quiet = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let mut busy = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    for s in [&mut quiet, &mut busy] {
        let head = upgrade(s, 5 * SECOND).await;
        assert!(head.is_some_and(|h| h.starts_with("HTTP/1.1 101")));
    }
    // 2 s of traffic every 200 ms: the busy tunnel stays, the quiet one goes.
    for _ in 0..10 {
        assert!(chat(&mut busy).await, "the busy tunnel broke");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        closed_within(&mut quiet, SECOND).await,
        "a tunnel silent for 2 s (read_timeout 600ms) is still open"
    );
    p.shutdown.cancel();
    let chatting = async {
        loop {
            if !chat(&mut busy).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(
        tokio::time::timeout(4 * SECOND, chatting).await.is_ok(),
        "a busy tunnel outlived shutdown_grace (1s) by 3 s"
    );
}

// --- Framing --------------------------------------------------------------------

/// Sends `req` and returns the status line, or what came back.
async fn status_of(addr: SocketAddr, req: &[u8]) -> String {
    let out = th::exchange(addr, req, 5 * SECOND).await.unwrap();
    out.lines().next().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_is_400() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let line = status_of(
        p.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(line.starts_with("HTTP/1.1 400"), "{line}");
    assert_eq!(a.hits.load(Ordering::Relaxed), 0, "forwarded anyway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_400() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let line = status_of(
        p.addr,
        b"GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(line.starts_with("HTTP/1.1 400"), "{line}");
    assert_eq!(a.hits.load(Ordering::Relaxed), 0, "forwarded anyway");
}

/// RFC 9112 §3.2.2: with an absolute-form target the target's authority is
/// the host; the one in `Host` is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_routes_by_its_authority() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let toml = format!(
        r#"
[proxy]
listen = ["{{listen}}"]
admin = "{{admin}}"
access_log = "off"
[[proxy.upstream]]
name = "a"
servers = [ {{ addr = "{}" }} ]
[[proxy.upstream]]
name = "b"
servers = [ {{ addr = "{}" }} ]
[[proxy.route]]
host = "a.example"
upstream = "a"
[[proxy.route]]
host = "b.example"
upstream = "b"
"#,
        a.addr, b.addr
    );
    let p = Proxy::start(&toml).await;
    let r = th::send_async(
        p.addr,
        b"GET http://b.example/echo HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("b\n"), "routed by Host: {}", r.body);
    assert!(
        r.body.contains("host: b.example\n"),
        "the forwarded Host is the target's authority: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_request_target_is_414() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let req = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let line = status_of(p.addr, req.as_bytes()).await;
    assert!(line.starts_with("HTTP/1.1 414"), "{line}");
}

/// Broken upstream responses become a 502 with the reason counted, never
/// a silent close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_upstream_responses_are_502() {
    let cases: [(&str, &[u8]); 4] = [
        (
            "ambiguous_length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "conflicting_length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        ("bad_head", b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"),
        ("bad_head", b"SMTP ready\r\n\r\n"),
    ];
    for (reason, answer) in cases {
        let b = Scripted::start(move |mut c| {
            let mut buf = Vec::new();
            if let Ok(Some(_)) = stackd_testkit::backend::read_request(&mut c, &mut buf) {
                let _ = c.write_all(answer);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let p = Proxy::start(&one_server(b.addr, "")).await;
        let r = tokio::time::timeout(5 * SECOND, th::get_async(p.addr, "/"))
            .await
            .unwrap_or_else(|_| panic!("{reason}: no response within 5 s"));
        let r = r.unwrap_or_else(|e| panic!("{reason}: no response: {e}"));
        assert_eq!(r.status, 502, "{reason}: {r:?}");
        let m = th::get_async(p.admin, "/metrics").await.unwrap().body;
        assert!(
            m.contains(&format!(
                "stackd_proxy_upstream_bad_responses_total{{upstream=\"app\",reason=\"{reason}\"}} 1"
            )),
            "{reason} not counted: {m}"
        );
    }
}

/// A response head larger than any sane limit is a 502 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_upstream_head_is_502() {
    let b = Scripted::start(|mut c| {
        let mut buf = Vec::new();
        if let Ok(Some(_)) = stackd_testkit::backend::read_request(&mut c, &mut buf) {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\n");
            for _ in 0..4096 {
                if c.write_all(b"x-filler: 0123456789012345678901234567890123456789\r\n")
                    .is_err()
                {
                    return;
                }
            }
            let _ = c.write_all(b"content-length: 0\r\n\r\n");
        }
    });
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let r = tokio::time::timeout(5 * SECOND, th::get_async(p.addr, "/"))
        .await
        .expect("a response within 5 s")
        .unwrap();
    assert_eq!(r.status, 502, "{r:?}");
}

/// A response head larger than one upstream read (4 KiB) but within the
/// limit reaches the client whole, its last field included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_head_over_several_reads_is_relayed_whole() {
    let b = Scripted::start(|mut c| {
        let mut buf = Vec::new();
        if let Ok(Some(_)) = stackd_testkit::backend::read_request(&mut c, &mut buf) {
            let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
            let value = "v".repeat(250);
            for i in 0..40 {
                head.extend_from_slice(format!("x-filler-{i:02}: {value}\r\n").as_bytes());
            }
            head.extend_from_slice(b"x-last: here\r\ncontent-length: 2\r\n\r\nok");
            let _ = c.write_all(&head);
        }
    });
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let r = tokio::time::timeout(5 * SECOND, th::get_async(p.addr, "/"))
        .await
        .expect("a response within 5 s")
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{r:?}");
    assert_eq!(r.header("x-last"), Some("here"), "{r:?}");
    assert_eq!(r.header("x-filler-39").map(str::len), Some(250), "{r:?}");
}

/// Untrusted peers' forwarding headers are removed whatever their size; a
/// trusted peer's long X-Forwarded-For is appended to, not passed unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_rebuilt_whatever_their_size() {
    let a = Backend::start("a").await;
    let long: String = (0..80).map(|i| format!("192.0.2.{i}, ")).collect();
    let long = long.trim_end_matches(", ");
    let req = format!(
        "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: {long}\r\n\
         Forwarded: for=\"{long}\"\r\nX-Forwarded-Prefix: /evil\r\nX-Forwarded-Port: 1\r\n\r\n"
    );
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let r = th::send_async(p.addr, req.as_bytes()).await.unwrap();
    assert!(
        r.body.contains("x-forwarded-for: 127.0.0.1\n"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("forwarded: for=127.0.0.1;host=\"x\";proto=http\n"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("192.0.2.")
            && !r.body.contains("/evil")
            && !r.body.contains("x-forwarded-port"),
        "an untrusted peer's forwarding headers got through: {}",
        r.body
    );

    let p = Proxy::start(&one_server(a.addr, "trusted_proxies = [\"127.0.0.1/32\"]")).await;
    let r = th::send_async(p.addr, req.as_bytes()).await.unwrap();
    assert!(
        r.body
            .contains(&format!("x-forwarded-for: {long}, 127.0.0.1\n")),
        "a trusted peer's X-Forwarded-For was not appended to: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_authorization_is_not_forwarded() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "")).await;
    let r = th::send_async(
        p.addr,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("proxy-authorization"), "{}", r.body);
}

// --- Early responses ------------------------------------------------------------

/// An 11 MiB POST over a 10 MiB limit: an ordinary blocking client that
/// sends everything, then reads, gets the 413 instead of a broken pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_413_reaches_a_client_still_sending() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "client_max_body_size = \"10m\"")).await;
    let addr = p.addr;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(10 * SECOND)).unwrap();
        s.set_read_timeout(Some(10 * SECOND)).unwrap();
        let len = 11 << 20;
        let head = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
        s.write_all(head.as_bytes())
            .map_err(|e| format!("head: {e}"))?;
        let chunk = vec![b'x'; 64 * 1024];
        for i in 0..(len / chunk.len()) {
            s.write_all(&chunk)
                .map_err(|e| format!("body write {i} failed: {e}"))?;
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if out.is_empty() => return Err(format!("read: {e}")),
                Err(_) => break,
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    })
    .await
    .unwrap();
    let out = outcome.unwrap_or_else(|e| panic!("the client never saw the 413: {e}"));
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert_eq!(a.hits.load(Ordering::Relaxed), 0);
}

// --- Pool and body ----------------------------------------------------------------

/// The upstream answered before the request body was complete: that upstream
/// connection must not go back to the pool, so the next request is not
/// stuck behind an upload that is still going on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connection_is_not_pooled_while_the_body_uploads() {
    let (b, seen) = head_first_backend();
    let p = Proxy::start(&one_server(b.addr, "")).await;
    let mut slow = Conn::connect(p.addr).await.unwrap();
    slow.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let r = slow.reply(5 * SECOND).await.unwrap();
    assert_eq!(r.status, 200);
    let next = tokio::time::timeout(3 * SECOND, th::get_async(p.addr, "/next")).await;
    assert!(
        matches!(&next, Ok(Ok(r)) if r.status == 200),
        "the next request waited on a connection still uploading: {next:?} (backend saw {:?})",
        seen.lock().unwrap()
    );
}

/// A client sending a byte every 250 ms never pauses for
/// `client_body_timeout` (1 s) but is far below the minimum body rate: cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_below_the_minimum_rate_is_cut() {
    let a = Backend::start("a").await;
    let p = Proxy::start(&one_server(a.addr, "client_body_timeout = \"1s\"")).await;
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    for _ in 0..32 {
        if s.write_all(b"x").await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(250), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
            }
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a 1 byte per 250 ms upload was still accepted after 8 s: {answer:?}"
    );
}

/// `read_timeout` holds for every request of a client connection, not
/// only its first: a connection keeps its timers and moves them to each
/// wait's deadline (`crate::timer`). Twenty quick answers first, so the
/// timers are filed and moved later many times; then an upstream silent
/// before its head (504 at `read_timeout`), then one that stalls inside
/// its body (the response cut at `read_timeout`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_holds_on_every_request_of_a_connection() {
    let b = Scripted::start(|mut c| {
        let mut buf = Vec::new();
        while let Ok(Some(n)) = stackd_testkit::backend::read_request(&mut c, &mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            buf.drain(..n);
            if line.starts_with("GET /quick ") {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                continue;
            }
            if line.starts_with("GET /stall ") {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello");
            }
            std::thread::sleep(3 * SECOND);
            return;
        }
    });
    // max_fails = 0: the 504 does not mark the only server down.
    let config = one_server(b.addr, "read_timeout = \"500ms\"")
        .replace("servers = [", "max_fails = 0\nservers = [");
    let p = Proxy::start(&config).await;
    let mut conn = Conn::connect(p.addr).await.unwrap();
    for _ in 0..20 {
        conn.write(b"GET /quick HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let r = conn.reply(5 * SECOND).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{r:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let within = |t: tokio::time::Instant| {
        let took = t.elapsed();
        assert!(
            (Duration::from_millis(450)..2 * SECOND).contains(&took),
            "read_timeout is 500ms; the proxy gave up after {took:?}"
        );
    };

    conn.write(b"GET /silent HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let t = tokio::time::Instant::now();
    let r = conn.reply(5 * SECOND).await.unwrap();
    assert_eq!(r.status, 504, "{r:?}");
    within(t);

    if r.closes() {
        conn = Conn::connect(p.addr).await.unwrap();
    }
    conn.write(b"GET /stall HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let t = tokio::time::Instant::now();
    assert!(
        conn.closed_within(5 * SECOND).await,
        "a response whose upstream stalled is not cut within 5 s: {:?}",
        String::from_utf8_lossy(conn.unread())
    );
    within(t);
    let got = String::from_utf8_lossy(conn.unread()).into_owned();
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("hello"),
        "{got}"
    );
}
