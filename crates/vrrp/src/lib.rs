//! VRRP virtual-IP failover: the keepalived part of stackd (issue 6).
//!
//! # Layout
//! Pure cores (no sockets, no clock):
//! - [`packet`]: VRRPv2/v3 encode/decode; [`checksum`]; [`ip`]: the IPv4 header.
//! - [`validate`]: RFC receive checks, each reject with a metric label.
//! - [`timers`]: Skew_Time and Master_Down_Interval.
//! - [`state`]: the RFC 5798 §6 state machine, events in, actions out.
//! - [`track`]: fall/rise hysteresis and effective priority.
//! - [`garp`]: gratuitous ARP / unsolicited NA frames (and their AF_PACKET send).
pub mod checksum;
pub mod garp;
pub mod ip;
pub mod packet;
pub mod state;
pub mod timers;
pub mod track;
pub mod validate;

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
