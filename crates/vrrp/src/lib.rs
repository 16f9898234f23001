//! VRRP virtual-IP failover: the keepalived part of stackd (being built, issue 6).

use stackd_common::config::HaConfig;
use stackd_common::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("ha is not built yet")]
    NotBuilt,
}

/// Runs every `[[ha.instance]]` until `shutdown`.
pub async fn run(_cfg: HaConfig, _shutdown: CancellationToken) -> Result<(), HaError> {
    Err(HaError::NotBuilt)
}
