//! Reverse proxy and load balancer: the nginx part of stackd (being built, issue 4).

use stackd_common::config::ProxyConfig;
use stackd_common::CancellationToken;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the proxy is not built yet")]
    NotBuilt,
}

/// Serves `cfg` until `shutdown`; each config from `reloads` replaces the running one.
pub async fn run(
    _cfg: ProxyConfig,
    _reloads: mpsc::Receiver<ProxyConfig>,
    _shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    Err(ProxyError::NotBuilt)
}
