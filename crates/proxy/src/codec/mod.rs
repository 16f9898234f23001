//! Our HTTP/1.1 codec: pure functions over byte buffers, no I/O.
//!
//! hyper's HTTP/1 server repairs what we must refuse (it lets
//! `Transfer-Encoding` win over `Content-Length`), answers a long target
//! with 431 instead of 414, cannot linger after an early response, and
//! hides its buffer, which is how the idle "park" misjudged a body as the
//! end of a request. With the codec ours, every byte's meaning is decided
//! in one place and the connection lifecycle (`listen::lifecycle`) knows
//! exactly what has been read. hyper stays where it earns its place:
//! HTTP/2.
//!
//! # Layout
//! - [`request`]: client request heads, with the framing and Host rules.
//! - [`response`]: upstream response heads; a broken one is a [`BadResponse`].
//! - [`fields`]: header fields as positions in their head, from one parse.
//! - [`framing`]: body lengths and the chunked coding ([`framing::Decoder`]).
//! - [`host`]: `Host` / authority syntax.
//! - [`write`](mod@write): serializing heads and our own short responses.

pub(crate) mod fields;
pub(crate) mod framing;
pub(crate) mod host;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod write;

use http::StatusCode;

pub(crate) use crate::error::BadResponse;
pub(crate) use fields::{names, Fields, Lookup, Name};

/// Most header fields in one head; more is 431 (request) or 502 (response).
pub(crate) const MAX_HEADERS: usize = 128;

/// A request refused before routing: the status and a short reason for the
/// log (never sent to the client beyond the status line's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) reason: &'static str,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, reason: &'static str) -> Refusal {
        Refusal { status, reason }
    }

    pub(crate) fn bad(reason: &'static str) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, reason)
    }
}

/// The comma-separated tokens of every `name` field, trimmed, empty ones
/// skipped; a value that is not text is one token no name matches. Bytes,
/// not `str`: a connection's `Connection` is read twice per response, and
/// every token is only ever compared with ASCII names.
pub(crate) fn tokens<'a>(
    h: &'a impl Lookup,
    name: &'a Name,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    h.values(name)
        .flat_map(|v| {
            let v = if fields::is_text(v) { v } else { b"\0" };
            v.split(|&b| b == b',')
        })
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}
