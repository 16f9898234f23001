//! Free loopback ports. The OS picks them (`127.0.0.1:0`), so parallel tests
//! never collide on a fixed number; the port is released before it is
//! returned, so a caller that binds it later may in rare cases lose a race,
//! which the launchers here retry.

use std::net::{SocketAddr, TcpListener};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    free_addr().port()
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> SocketAddr {
    try_free_addr().unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// [`free_addr`] for callers that report errors instead of panicking.
pub fn try_free_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
}
