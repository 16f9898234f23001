//! Reverse proxy and load balancer: the nginx part of stackd.
//!
//! # Layout
//! - [`balance`]: pure load-balancing policies over a server tier.
//! - [`health`]: pure passive and active health hysteresis.
//! - [`error`]: [`ProxyError`] with the failing side and the client status.

pub mod balance;
pub mod error;
pub mod health;

pub use error::{ErrorKind, ProxyError, Side};

use stackd_common::config::ProxyConfig;
use stackd_common::CancellationToken;
use tokio::sync::mpsc;

/// Serves `cfg` until `shutdown`; each config from `reloads` replaces the running one.
pub async fn run(
    _cfg: ProxyConfig,
    _reloads: mpsc::Receiver<ProxyConfig>,
    _shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    Err(ProxyError::proxy(ErrorKind::Tls("not built".into())))
}
