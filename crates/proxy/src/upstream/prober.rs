//! Active health checks: one task per upstream with `health`, feeding the
//! pure [`super::health::Active`] hysteresis. Restarted whole on every reload.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::Full;
use stackd_common::config::proxy::HealthCheck;
use stackd_common::http_client::HttpClient;
use stackd_common::CancellationToken;
use tokio::sync::oneshot;

use super::health::Transition;
use super::server::AdminState;
use super::{ServerState, UpstreamRt};

/// Starts the probers of `upstreams`; cancel the returned token to stop them.
/// They share one client (stackd's outbound HTTP client, as tracking and
/// webhooks use), so a check reuses its connection between rounds.
///
/// The returned future completes once every upstream has had its first
/// round of checks (at once when none has checks): the proxy says it is
/// ready only then, so a new process never starts on guessed health.
pub(crate) fn spawn(
    upstreams: &[Arc<UpstreamRt>],
    token: CancellationToken,
) -> (CancellationToken, FirstRound) {
    let client = HttpClient::new("stackd-health-check");
    let mut first = Vec::new();
    for up in upstreams.iter().filter(|u| u.health.is_some()) {
        let (tx, rx) = oneshot::channel();
        first.push(rx);
        tokio::spawn(probe_upstream(
            up.clone(),
            client.clone(),
            token.clone(),
            tx,
        ));
    }
    let round = Box::pin(async move {
        futures::future::join_all(first).await;
    });
    (token, round)
}

/// Completes when every upstream's first round of checks is done.
pub(crate) type FirstRound = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

async fn probe_upstream(
    up: Arc<UpstreamRt>,
    client: HttpClient,
    stop: CancellationToken,
    first: oneshot::Sender<()>,
) {
    let Some(hc) = up.health.clone() else { return };
    let mut tick = tokio::time::interval(hc.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = Some(first);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // A server the operator disabled is in maintenance: not even probed.
        let checks = up
            .all()
            .filter(|s| s.state.admin() != AdminState::Disable)
            .map(|s| check(&client, &up.name, &s.state, &hc));
        futures::future::join_all(checks).await;
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
    }
}

async fn check(client: &HttpClient, upstream: &str, s: &ServerState, hc: &HealthCheck) {
    let failed = match probe(client, s, hc).await {
        Ok(status) if status.is_success() || status.is_redirection() => None,
        Ok(status) => Some(format!("GET {} answered {status}", hc.path)),
        Err(e) => Some(e),
    };
    match s.record_check(failed.as_deref(), hc.fall, hc.rise, crate::clock::unix_ms()) {
        Some(Transition::Down) => {
            let why = failed.as_deref().unwrap_or_default();
            tracing::warn!(upstream, server = %s.addr(), reason = %why, "server down (active health check)")
        }
        Some(Transition::Up) => {
            tracing::info!(upstream, server = %s.addr(), "server up (active health check)")
        }
        None => {}
    }
}

/// `GET <path>` to the server itself, with the `Host` it is proxied as.
async fn probe(
    client: &HttpClient,
    s: &ServerState,
    hc: &HealthCheck,
) -> Result<http::StatusCode, String> {
    let req = Request::get(format!("http://{}{}", s.addr(), hc.path))
        .header(header::HOST, s.authority())
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("request: {e}"))?;
    client
        .request(req, hc.timeout)
        .await
        .map(|r| r.status)
        .map_err(|e| e.to_string())
}
