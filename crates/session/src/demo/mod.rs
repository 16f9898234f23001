//! Placeholder
use stackd_common::config::DemoBackendConfig;
use stackd_common::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo backend is not built yet")]
    NotBuilt,
}

pub async fn run(_cfg: DemoBackendConfig, _shutdown: CancellationToken) -> Result<(), DemoError> {
    Err(DemoError::NotBuilt)
}
