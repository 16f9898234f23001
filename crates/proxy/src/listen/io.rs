//! The client's byte stream, plain or TLS, as one type: the HTTP/1 driver
//! is written (and compiled) once for both.

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A client connection's stream.
pub(crate) type ClientIo = stackd_common::tls_stream::MaybeTls<TlsStream<TcpStream>>;
