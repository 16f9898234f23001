//! One error type for the proxy, carrying which side failed and how, so the
//! client gets the right status: a client mistake is 4xx, an upstream that is
//! down is 502/503, an upstream that is slow is 504.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use http::StatusCode;

/// Who caused the failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something we refuse, or was too slow.
    Client,
    /// The upstream server failed, refused or timed out.
    Upstream,
    /// Our own setup: binding, certificates.
    Proxy,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Proxy => "proxy",
        })
    }
}

/// What went wrong; each kind maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("no route matches this host and path")]
    NoRoute,
    #[error("no server is up in this upstream")]
    NoServer,
    #[error("cannot connect to the upstream server: {0}")]
    Connect(io::Error),
    #[error("the upstream server did not accept the connection in time")]
    ConnectTimeout,
    #[error("the upstream server did not answer in time")]
    ReadTimeout,
    #[error("the upstream connection failed: {0}")]
    Upstream(hyper::Error),
    #[error("the request body is larger than client_max_body_size")]
    BodyTooLarge,
    #[error("the request headers are larger than max_header_size")]
    HeadersTooLarge,
    #[error("the client sent the request too slowly")]
    ClientTimeout,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("the client went away")]
    ClientGone,
}

/// A failure with its side; see [`ProxyError::status`].
#[derive(Debug, thiserror::Error)]
#[error("{side}: {kind}")]
pub struct ProxyError {
    pub side: Side,
    #[source]
    pub kind: ErrorKind,
}

// === impl ProxyError ===

impl ProxyError {
    pub fn client(kind: ErrorKind) -> ProxyError {
        ProxyError {
            side: Side::Client,
            kind,
        }
    }

    pub fn upstream(kind: ErrorKind) -> ProxyError {
        ProxyError {
            side: Side::Upstream,
            kind,
        }
    }

    pub fn proxy(kind: ErrorKind) -> ProxyError {
        ProxyError {
            side: Side::Proxy,
            kind,
        }
    }

    /// The status the client gets.
    ///
    /// ```
    /// use stackd_proxy::{ErrorKind, ProxyError};
    /// let e = ProxyError::upstream(ErrorKind::ReadTimeout);
    /// assert_eq!(e.status().as_u16(), 504);
    /// assert_eq!(ProxyError::client(ErrorKind::BodyTooLarge).status().as_u16(), 413);
    /// ```
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Connect(_) | ErrorKind::Upstream(_) => StatusCode::BAD_GATEWAY,
            ErrorKind::ConnectTimeout | ErrorKind::ReadTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::BadRequest(_) | ErrorKind::ClientGone => StatusCode::BAD_REQUEST,
            ErrorKind::Bind { .. } | ErrorKind::Tls(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short plain-text reason for the response body; never leaks addresses.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            ErrorKind::NoRoute => "404 Not Found: no route for this host and path\n",
            ErrorKind::NoServer => "503 Service Unavailable: no upstream server is up\n",
            ErrorKind::Connect(_) => "502 Bad Gateway: cannot connect to the upstream server\n",
            ErrorKind::Upstream(_) => "502 Bad Gateway: the upstream server failed\n",
            ErrorKind::ConnectTimeout => "504 Gateway Timeout: upstream connect timed out\n",
            ErrorKind::ReadTimeout => {
                "504 Gateway Timeout: the upstream server did not answer in time\n"
            }
            ErrorKind::BodyTooLarge => "413 Payload Too Large: body over client_max_body_size\n",
            ErrorKind::HeadersTooLarge => "431 Request Header Fields Too Large\n",
            ErrorKind::ClientTimeout => "408 Request Timeout\n",
            ErrorKind::BadRequest(_) | ErrorKind::ClientGone => "400 Bad Request\n",
            ErrorKind::Bind { .. } | ErrorKind::Tls(_) => "500 Internal Server Error\n",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_statuses() {
        let cases = [
            (ProxyError::client(ErrorKind::BodyTooLarge), 413),
            (ProxyError::client(ErrorKind::HeadersTooLarge), 431),
            (ProxyError::client(ErrorKind::ClientTimeout), 408),
            (ProxyError::client(ErrorKind::BadRequest("x")), 400),
            (ProxyError::upstream(ErrorKind::NoServer), 503),
            (
                ProxyError::upstream(ErrorKind::Connect(io::ErrorKind::ConnectionRefused.into())),
                502,
            ),
            (ProxyError::upstream(ErrorKind::ConnectTimeout), 504),
            (ProxyError::upstream(ErrorKind::ReadTimeout), 504),
            (ProxyError::proxy(ErrorKind::NoRoute), 404),
        ];
        for (e, code) in cases {
            assert_eq!(e.status().as_u16(), code, "{e}");
            assert!(e.reason().starts_with(&code.to_string()), "{}", e.reason());
        }
    }
}
