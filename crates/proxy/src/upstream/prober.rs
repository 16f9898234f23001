//! Active health checks: one task per upstream with `health`, feeding the
//! pure [`super::health::Active`] hysteresis. Restarted whole on every reload.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use stackd_common::config::proxy::HealthCheck;
use stackd_common::CancellationToken;
use tokio::net::TcpStream;

use super::health::Transition;
use super::{ServerState, UpstreamRt};

/// Starts the probers of `upstreams`; cancel the returned token to stop them.
pub(crate) fn spawn(upstreams: &[Arc<UpstreamRt>], token: CancellationToken) -> CancellationToken {
    for up in upstreams.iter().filter(|u| u.health.is_some()) {
        tokio::spawn(probe_upstream(up.clone(), token.clone()));
    }
    token
}

async fn probe_upstream(up: Arc<UpstreamRt>, stop: CancellationToken) {
    let Some(hc) = up.health.clone() else { return };
    let mut tick = tokio::time::interval(hc.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let checks = up.all().map(|s| check(&up.name, &s.state, &hc));
        futures::future::join_all(checks).await;
    }
}

async fn check(upstream: &str, s: &ServerState, hc: &HealthCheck) {
    let res = tokio::time::timeout(hc.timeout, probe(s, &hc.path)).await;
    let (ok, why) = match res {
        Ok(Ok(status)) if status.is_success() || status.is_redirection() => (true, String::new()),
        Ok(Ok(status)) => (false, format!("status {status}")),
        Ok(Err(e)) => (false, e),
        Err(_) => (false, format!("no answer within {:?}", hc.timeout)),
    };
    match s.record_check(ok, hc.fall, hc.rise, crate::clock::unix_ms()) {
        Some(Transition::Down) => {
            tracing::warn!(upstream, server = %s.addr(), reason = %why, "server down (active health check)")
        }
        Some(Transition::Up) => {
            tracing::info!(upstream, server = %s.addr(), "server up (active health check)")
        }
        None => {}
    }
}

async fn probe(s: &ServerState, path: &str) -> Result<http::StatusCode, String> {
    let stream = TcpStream::connect(s.addr())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut tx, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    let conn_task = tokio::spawn(conn);
    let req = Request::get(path)
        .header(header::HOST, s.authority())
        .header(header::CONNECTION, "close")
        .header(header::USER_AGENT, "stackd-health-check")
        .body(Empty::new())
        .map_err(|e| format!("request: {e}"))?;
    let resp = tx
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"));
    conn_task.abort();
    Ok(resp?.status())
}
