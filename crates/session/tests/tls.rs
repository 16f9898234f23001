//! `rediss://`: a real redis-server with TLS on a free loopback port and a
//! certificate from a private CA (made with the openssl CLI). With
//! `redis_ca_file` the store connects and the demo backend serves sessions;
//! without it the certificate is rejected, so verification is really on.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use stackd_session::{open_store_with, StoreOptions};
use stackd_testkit::free_port;
use stackd_testkit::http::Browser;
use support::backend::{config, Backend};
use tokio::time::Instant;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    // A CA, and a server certificate for 127.0.0.1 signed by it (webpki
    // refuses a self-signed certificate used directly as the server's).
    let script = "set -e
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stackd-test-ca -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out req.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf
        openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem";
    let made = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sh + openssl (apt-get install openssl)");
    assert!(
        made.success(),
        "openssl could not make the test certificates"
    );
    let port = free_port();
    let _redis = Proc(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--tls-cert-file",
            ])
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("rediss://127.0.0.1:{port}/");
    let opts = StoreOptions {
        key_prefix: "t:".into(),
        timeout: Duration::from_secs(2),
        ca_file: Some(ca.clone()),
        ..StoreOptions::default()
    };
    let store = open_store_with(&url, &opts).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = store.ping().await {
        assert!(
            Instant::now() < deadline,
            "TLS redis not reachable after 10s: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let untrusted = open_store_with(
        &url,
        &StoreOptions {
            ca_file: None,
            ..opts.clone()
        },
    )
    .unwrap();
    let e = untrusted
        .ping()
        .await
        .expect_err("a certificate from an unknown CA must be refused");
    println!("without redis_ca_file: {e}");

    let mut cfg = config(
        "tls1",
        &url,
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    cfg.redis_ca_file = Some(ca);
    let be = Backend::start(cfg).await;
    let mut b = Browser::new();
    assert_eq!(
        b.get(be.addr, "/session").await.unwrap().json()["visits"],
        1
    );
    assert_eq!(
        b.get(be.addr, "/session").await.unwrap().json()["visits"],
        2
    );
    assert_eq!(b.get(be.addr, "/healthz").await.unwrap().status, 200);
}
