//! The client against real loopback servers: plain HTTP, HTTPS with a
//! private CA, a server that never answers, and one that streams too much.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const T: Duration = Duration::from_secs(5);

/// Reads one request head (and a Content-Length body) from `s`.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Answers every request on `s` with `reply`, returning what arrived.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, reply: &'static [u8]) -> String {
    let req = read_request(&mut s).await;
    s.write_all(reply).await.unwrap();
    s.flush().await.unwrap();
    req
}

#[tokio::test]
async fn plain_get_and_json_post() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (s, _) = l.accept().await.unwrap();
            seen.push(answer(s, b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await);
        }
        seen
    });
    let c = HttpClient::new("stackd-test");
    let r = c.get(&format!("http://{addr}/healthz"), T).await.unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .post_json(&format!("http://{addr}/hook"), br#"{"a":1}"#.to_vec(), T)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let seen = server.await.unwrap();
    assert!(
        seen[0].starts_with("GET /healthz HTTP/1.1\r\n"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("user-agent: stackd-test"), "{}", seen[0]);
    assert!(
        seen[1].starts_with("POST /hook HTTP/1.1\r\n"),
        "{}",
        seen[1]
    );
    assert!(
        seen[1].contains("content-type: application/json"),
        "{}",
        seen[1]
    );
    assert!(seen[1].ends_with(r#"{"a":1}"#), "{}", seen[1]);
}

#[tokio::test]
async fn https_with_a_private_ca() {
    let key =
        rcgen::generate_simple_self_signed(vec!["hooks.test".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = CertificateDer::from(key.cert.der().to_vec());
    let pkey = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let server_cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], pkey)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // The first client does not trust us and gives up in the handshake.
        loop {
            let (s, _) = l.accept().await.unwrap();
            if let Ok(tls) = acceptor.accept(s).await {
                return answer(
                    tls,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                )
                .await;
            }
        }
    });
    let url = format!("https://127.0.0.1:{}/hook", addr.port());

    // Without the CA the handshake fails, and the error says so.
    let e = HttpClient::new("t")
        .post_json(&url, b"{}".to_vec(), T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");

    let c = HttpClient::with_extra_roots("t", key.cert.pem().as_bytes()).unwrap();
    let r = c.post_json(&url, b"{}".to_vec(), T).await.unwrap();
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"ok"[..]));
    assert!(server.await.unwrap().starts_with("POST /hook HTTP/1.1"));
    assert!(matches!(
        HttpClient::with_extra_roots("t", b"not pem"),
        Err(TlsSetupError::NoCertificate)
    ));
}

#[tokio::test]
async fn silent_server_times_out_and_huge_body_is_refused() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        // First connection: never answers. Second: a body beyond MAX_BODY.
        let (silent, _) = l.accept().await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        read_request(&mut s).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        while s.write_all(&chunk).await.is_ok() {}
        drop(silent);
    });
    let c = HttpClient::new("t");
    let url = format!("http://{addr}/");
    let t0 = tokio::time::Instant::now();
    let e = c.get(&url, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(e, HttpError::Timeout { .. }), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    let e = c.get(&url, T).await.unwrap_err();
    assert!(matches!(e, HttpError::Body { .. }), "{e}");
}

#[tokio::test]
async fn a_caller_built_request_keeps_its_headers() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        answer(
            s,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
    });
    let req = Request::get(format!("http://{addr}/healthz"))
        .header(http::header::HOST, "shop.example.com")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = HttpClient::new("t").request(req, T).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let seen = server.await.unwrap();
    assert!(seen.contains("host: shop.example.com\r\n"), "{seen}");
    assert!(seen.contains("user-agent: t\r\n"), "{seen}");
}

#[tokio::test]
async fn refused_and_bad_urls_say_why() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = HttpClient::new("t");
    let e = c
        .get(&format!("http://127.0.0.1:{port}/"), T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    for bad in ["ftp://x/", "http:///x", "nonsense"] {
        assert!(
            matches!(c.get(bad, T).await, Err(HttpError::Url { .. })),
            "{bad}"
        );
    }
}
