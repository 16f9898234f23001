//! One error type for the proxy, carrying which side failed and how, so the
//! client gets the right status: a client mistake is 4xx, an upstream that
//! is down or broken is 502/503, an upstream that is slow is 504.
//!
//! Messages carry their cause inline and expose no `source()`, so a chain
//! printer (`anyhow`'s `{:#}`) says each thing once.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use http::StatusCode;

/// Who caused the failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something we refuse, was too slow, or went away.
    Client,
    /// The upstream server failed, refused, broke the protocol or timed out.
    Upstream,
    /// Our own setup: binding, certificates, routing.
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

/// Why an upstream response was refused (502, connection closed); the
/// label is the metric's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    #[error("malformed status line or header")]
    BadHead,
    #[error("Content-Length together with Transfer-Encoding")]
    AmbiguousLength,
    #[error("invalid or conflicting Content-Length")]
    ConflictingLength,
    #[error("response head larger than the limit")]
    HeadTooLarge,
    #[error("a transfer coding we cannot decode")]
    UnsupportedCoding,
    #[error("101 Switching Protocols to a request that asked for no upgrade")]
    UnexpectedUpgrade,
    #[error("broken body framing")]
    BadBody,
}

impl BadResponse {
    /// Every reason, in index order.
    pub const ALL: [BadResponse; 7] = [
        BadResponse::BadHead,
        BadResponse::AmbiguousLength,
        BadResponse::ConflictingLength,
        BadResponse::HeadTooLarge,
        BadResponse::UnsupportedCoding,
        BadResponse::UnexpectedUpgrade,
        BadResponse::BadBody,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BadResponse::BadHead => "bad_head",
            BadResponse::AmbiguousLength => "ambiguous_length",
            BadResponse::ConflictingLength => "conflicting_length",
            BadResponse::HeadTooLarge => "head_too_large",
            BadResponse::UnsupportedCoding => "unsupported_coding",
            BadResponse::UnexpectedUpgrade => "unexpected_upgrade",
            BadResponse::BadBody => "bad_body",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What went wrong; each kind maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: io::Error },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("cannot open the access log {path}: {error}")]
    AccessLog {
        path: std::path::PathBuf,
        error: io::Error,
    },
    #[error("no route matches this host and path")]
    NoRoute,
    #[error("no server is up in this upstream")]
    NoServer,
    #[error("cannot connect to the upstream server: {0}")]
    Connect(io::Error),
    #[error("the upstream server did not accept the connection in time")]
    ConnectTimeout,
    #[error("the upstream server did not take the request in time")]
    SendTimeout,
    #[error("the upstream server did not answer in time")]
    ReadTimeout,
    #[error("the upstream connection failed: {0}")]
    UpstreamIo(io::Error),
    #[error("the upstream sent a broken response: {0}")]
    BadResponse(BadResponse),
    #[error("refused request ({status}): {reason}")]
    Refused {
        status: StatusCode,
        reason: &'static str,
    },
    #[error("the request body is larger than client_max_body_size")]
    BodyTooLarge,
    #[error("the request body's chunked framing is broken")]
    BadBody,
    #[error("the client sent the request too slowly")]
    ClientTimeout,
    #[error("the client went away or stopped reading")]
    ClientGone,
}

/// A failure with its side; see [`ProxyError::status`].
#[derive(Debug, thiserror::Error)]
#[error("{side}: {kind}")]
pub struct ProxyError {
    pub side: Side,
    pub kind: ErrorKind,
}

/// nginx's "client closed request": logged and counted, never sent.
const CLIENT_CLOSED: u16 = 499;

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

    /// The status the client gets (499, "client closed request", is only logged).
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
            ErrorKind::Connect(_) | ErrorKind::UpstreamIo(_) | ErrorKind::BadResponse(_) => {
                StatusCode::BAD_GATEWAY
            }
            ErrorKind::ConnectTimeout | ErrorKind::SendTimeout | ErrorKind::ReadTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ErrorKind::Refused { status, .. } => *status,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BadBody => StatusCode::BAD_REQUEST,
            ErrorKind::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::ClientGone => {
                StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ErrorKind::Bind { .. } | ErrorKind::Tls(_) | ErrorKind::AccessLog { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A short plain-text body for the response; never leaks addresses.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            ErrorKind::NoRoute => "404 Not Found: no route for this host and path\n",
            ErrorKind::NoServer => "503 Service Unavailable: no upstream server is up\n",
            ErrorKind::Connect(_) => "502 Bad Gateway: cannot connect to the upstream server\n",
            ErrorKind::UpstreamIo(_) => "502 Bad Gateway: the upstream server failed\n",
            ErrorKind::BadResponse(_) => "502 Bad Gateway: the upstream sent a broken response\n",
            ErrorKind::ConnectTimeout => "504 Gateway Timeout: upstream connect timed out\n",
            ErrorKind::SendTimeout | ErrorKind::ReadTimeout => {
                "504 Gateway Timeout: the upstream server did not answer in time\n"
            }
            ErrorKind::Refused { status, .. } => match status.as_u16() {
                405 => "405 Method Not Allowed\n",
                414 => "414 URI Too Long\n",
                417 => "417 Expectation Failed\n",
                431 => "431 Request Header Fields Too Large\n",
                501 => "501 Not Implemented\n",
                _ => "400 Bad Request\n",
            },
            ErrorKind::BodyTooLarge => "413 Payload Too Large: body over client_max_body_size\n",
            ErrorKind::ClientTimeout => "408 Request Timeout\n",
            ErrorKind::BadBody | ErrorKind::ClientGone => "400 Bad Request\n",
            ErrorKind::Bind { .. } | ErrorKind::Tls(_) | ErrorKind::AccessLog { .. } => {
                "500 Internal Server Error\n"
            }
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
            (
                ProxyError::client(ErrorKind::Refused {
                    status: StatusCode::URI_TOO_LONG,
                    reason: "x",
                }),
                414,
            ),
            (ProxyError::client(ErrorKind::ClientTimeout), 408),
            (ProxyError::client(ErrorKind::BadBody), 400),
            (ProxyError::upstream(ErrorKind::NoServer), 503),
            (
                ProxyError::upstream(ErrorKind::Connect(io::ErrorKind::ConnectionRefused.into())),
                502,
            ),
            (
                ProxyError::upstream(ErrorKind::BadResponse(BadResponse::AmbiguousLength)),
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
        assert_eq!(
            ProxyError::client(ErrorKind::ClientGone).status().as_u16(),
            499
        );
    }
}
