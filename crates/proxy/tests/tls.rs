//! TLS termination with two certificates chosen by SNI, and h2 via ALPN.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Certs {
    _dir: tempfile::TempDir,
    a: rcgen::CertifiedKey<rcgen::KeyPair>,
    b: rcgen::CertifiedKey<rcgen::KeyPair>,
    toml: String,
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let a = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["b.test".to_string(), "*.b.test".to_string()])
        .unwrap();
    let mut toml = String::new();
    for (name, c, names) in [
        ("a", &a, ""),
        ("b", &b, "server_names = [\"b.test\", \"*.b.test\"]"),
    ] {
        let cert = dir.path().join(format!("{name}.pem"));
        let key = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        toml.push_str(&format!(
            "\n[[proxy.tls]]\ncert = \"{}\"\nkey = \"{}\"\n{names}\n",
            cert.display(),
            key.display()
        ));
    }
    Certs {
        _dir: dir,
        a,
        b,
        toml,
    }
}

fn connector(certs: &Certs, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs.a.cert.der().clone()).unwrap();
    roots.add(certs.b.cert.der().clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn start(certs: &Certs, backend: std::net::SocketAddr) -> Proxy {
    let toml = one_server(backend, "").replace(
        "listen = [\"{listen}\"]",
        "listen = [{ addr = \"{listen}\", tls = true }]",
    ) + &certs.toml;
    // The TLS table must come after the [proxy] keys but before sub-tables is not required by TOML.
    Proxy::start_tls(&toml, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sni_names_get_their_own_certificates() {
    let certs = certs();
    let be = Backend::start("a").await;
    let p = start(&certs, be.addr).await;
    for (sni, want) in [
        ("a.test", certs.a.cert.der()),
        ("b.test", certs.b.cert.der()),
        ("x.b.test", certs.b.cert.der()),
    ] {
        let tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let mut tls = tokio::time::timeout(
            Duration::from_secs(5),
            connector(&certs, &[b"http/1.1"]).connect(name, tcp),
        )
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("handshake for {sni}: {e}"));
        let presented: &CertificateDer<'_> = &tls.get_ref().1.peer_certificates().unwrap()[0];
        assert_eq!(presented, want, "certificate for {sni}");
        tls.write_all(
            format!("GET /echo HTTP/1.1\r\nhost: {sni}\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("x-forwarded-proto: https"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_by_alpn() {
    let certs = certs();
    let be = Backend::start("a").await;
    let p = start(&certs, be.addr).await;
    let tcp = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let tls = connector(&certs, &[b"h2", b"http/1.1"])
        .connect(ServerName::try_from("a.test").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut tx, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = http::Request::get("https://a.test/echo")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), tx.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("host: a.test\n"),
            "Host comes from :authority: {body}"
        );
    }
}
