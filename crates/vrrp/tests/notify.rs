//! Notifications reach a webhook (JSON POST) and an SMTP server, both real
//! loopback servers on ephemeral ports.

use std::time::Duration;

use stackd_common::config::ha::EmailConfig;
use stackd_common::http_client::HttpClient;
use stackd_vrrp::notify::{Announced, Notice, Notifier};
use stackd_vrrp::state::State;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn notice() -> Notice {
    Notice {
        instance: "VI_1".into(),
        state: Announced::Master,
        previous: State::Backup,
        priority: 100,
        reason: "master down timer expired".into(),
        host: "px1".into(),
    }
}

#[tokio::test]
async fn webhook_gets_json() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("test io");
    let url = format!("http://{}/hook", l.local_addr().expect("test io"));
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("test io");
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        // Read until the body (after the blank line) holds the whole JSON object.
        while !req.ends_with(b"}") {
            let n = s.read(&mut buf).await.expect("test io");
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .expect("test io");
        let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
    });
    let n = Notifier {
        webhook: Some(url),
        ..Notifier::new(HttpClient::new("stackd-ha-test"))
    };
    tokio::spawn(async move { n.deliver(&notice()).await });
    let req = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("test io")
        .expect("test io");
    assert!(req.starts_with("POST /hook HTTP/1.1\r\n"), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{req}"
    );
    let body = req.split("\r\n\r\n").nth(1).expect("test io");
    let v: serde_json::Value = serde_json::from_str(body).expect("test io");
    assert_eq!(v["instance"], "VI_1");
    assert_eq!(v["state"], "MASTER");
    assert_eq!(v["previous"], "BACKUP");
    assert_eq!(v["priority"], 100);
}

/// Just enough SMTP to accept one message; returns the DATA section.
async fn fake_smtp(l: TcpListener, tx: oneshot::Sender<String>) {
    let (s, _) = l.accept().await.expect("test io");
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220 fake ESMTP\r\n").await.expect("test io");
    let mut data = String::new();
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if in_data {
            if line == "." {
                in_data = false;
                w.write_all(b"250 queued\r\n").await.expect("test io");
            } else {
                data.push_str(&line);
                data.push('\n');
            }
            continue;
        }
        let cmd = line.to_ascii_uppercase();
        let reply: &[u8] = if cmd.starts_with("DATA") {
            in_data = true;
            b"354 go ahead\r\n"
        } else if cmd.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n").await.expect("test io");
            break;
        } else {
            b"250 ok\r\n"
        };
        w.write_all(reply).await.expect("test io");
    }
    let _ = tx.send(data);
}

#[tokio::test]
async fn mail_goes_through_smtp() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("test io");
    let server = l.local_addr().expect("test io").to_string();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(fake_smtp(l, tx));
    let email = EmailConfig {
        smtp_server: server,
        from: "stackd@example.test".into(),
        to: vec!["ops@example.test".into()],
        timeout: Duration::from_secs(5),
    };
    let n = Notifier {
        email: Some(email),
        ..Notifier::new(HttpClient::new("stackd-ha-test"))
    };
    tokio::spawn(async move { n.deliver(&notice()).await });
    let data = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("test io")
        .expect("test io");
    assert!(
        data.contains("Subject: [px1] VI_1 is now MASTER (master down timer expired)"),
        "{data}"
    );
    assert!(data.contains("To: ops@example.test"), "{data}");
    assert!(data.contains("priority: 100"), "{data}");
}
