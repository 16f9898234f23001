//! Parking: an idle HTTP/1 connection hands its socket back, and only when
//! hyper holds nothing of the next request.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{ConnInfo, ConnIo, ParkSlot};

/// Serves one hyper connection on `server`; the service marks the response
/// done as our response body does. Returns the socket if it parked.
async fn serve(server: DuplexStream) -> Option<DuplexStream> {
    let info = Arc::new(ConnInfo::new(([127, 0, 0, 1], 1).into(), false));
    let slot: ParkSlot<DuplexStream> = Arc::new(Mutex::new(None));
    let io = ConnIo::new(
        server,
        info.clone(),
        Duration::from_secs(5),
        Duration::from_secs(5),
        false,
    )
    .park_in(slot.clone());
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let info = info.clone();
        async move {
            info.request_started();
            let body = format!("path={}\n", req.uri().path());
            info.response_done(true);
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), svc);
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("hyper connection should end")
        .expect("clean end");
    let parked = slot.lock().unwrap().take();
    parked
}

/// Reads until `n` responses ("path=" bodies) arrived.
async fn responses(client: &mut DuplexStream, n: usize) -> String {
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while got.matches("path=").count() < n {
        let k = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(k > 0, "EOF after {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    got
}

#[tokio::test]
async fn idle_connection_parks_and_resumes_on_the_same_socket() {
    let (mut client, server) = duplex(64 * 1024);
    let task = tokio::spawn(serve(server));
    client
        .write_all(b"GET /one HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(responses(&mut client, 1).await.contains("path=/one"));
    let server = task.await.unwrap().expect("idle connection parked");
    // A fresh hyper connection on the parked socket serves the next request.
    let task = tokio::spawn(serve(server));
    client
        .write_all(b"GET /two HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(responses(&mut client, 1).await.contains("path=/two"));
    assert!(task.await.unwrap().is_some());
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_before_parking() {
    let (mut client, server) = duplex(64 * 1024);
    let task = tokio::spawn(serve(server));
    client
        .write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\nGET /c HTTP/1.1\r\nho")
        .await
        .unwrap();
    let got = responses(&mut client, 2).await;
    assert!(got.contains("path=/a") && got.contains("path=/b"), "{got}");
    // hyper holds half of /c: it must not park now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !task.is_finished(),
        "parked with a partial request buffered"
    );
    client.write_all(b"st: x\r\n\r\n").await.unwrap();
    assert!(responses(&mut client, 1).await.contains("path=/c"));
    assert!(task.await.unwrap().is_some(), "parks once /c is answered");
}

#[tokio::test]
async fn content_length_body_keeps_the_connection_in_hyper() {
    let (mut client, server) = duplex(64 * 1024);
    let task = tokio::spawn(serve(server));
    client
        .write_all(b"POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
        .await
        .unwrap();
    assert!(responses(&mut client, 1).await.contains("path=/p"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !task.is_finished(),
        "parked after a body whose end it cannot see"
    );
    client
        .write_all(b"GET /q HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(responses(&mut client, 1).await.contains("path=/q"));
    assert!(task.await.unwrap().is_some());
}

fn idle_io(complete: bool) -> ConnIo<DuplexStream> {
    let info = ConnInfo::new(([127, 0, 0, 1], 1).into(), false);
    info.request_started();
    info.response_done(complete);
    let (_client, server) = duplex(1024);
    let mut io = ConnIo::new(
        server,
        Arc::new(info),
        Duration::from_secs(5),
        Duration::from_secs(5),
        false,
    )
    .park_in(Arc::new(Mutex::new(None)));
    io.tail = super::CRLFCRLF;
    io
}

#[tokio::test]
async fn aborted_response_never_parks() {
    assert!(idle_io(true).may_park());
    assert!(!idle_io(false).may_park());
}
