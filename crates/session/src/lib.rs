//! Shared sessions and the demo backend (being built, issue 5).

pub mod demo {
    use stackd_common::config::DemoBackendConfig;
    use stackd_common::CancellationToken;

    #[derive(Debug, thiserror::Error)]
    pub enum DemoError {
        #[error("the demo backend is not built yet")]
        NotBuilt,
    }

    /// Serves the demo app until `shutdown`.
    pub async fn run(_cfg: DemoBackendConfig, _shutdown: CancellationToken) -> Result<(), DemoError> {
        Err(DemoError::NotBuilt)
    }
}
