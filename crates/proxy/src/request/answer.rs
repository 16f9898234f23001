//! The response head as it goes to the client: the upstream's fields as
//! they came, minus what stops at this hop, plus what the proxy adds.
//!
//! The head is not rebuilt as a map: [`Answer::fields`] filters the
//! upstream's fields while they are written (HTTP/1) or collected
//! (HTTP/2, [`Answer::map`]). Names keep the case the server gave them,
//! as nginx and HAProxy pass them on.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::rewrite;
use crate::codec::fields::{self, tag};
use crate::codec::Fields;

/// A response head on its way to the client: the upstream's fields as it
/// sent them, and what the proxy changes in them. [`Answer::fields`] is
/// what goes on; nothing is copied or rebuilt until it is written.
#[derive(Debug)]
pub(crate) struct Answer<'r> {
    pub(crate) status: StatusCode,
    upstream: Fields,
    /// Fields the upstream's `Connection` named (RFC 9110 §7.6.1).
    named: Vec<Box<[u8]>>,
    /// `Location`, rewritten to the address the client used.
    location: Option<HeaderValue>,
    /// The route's `add_headers`, in place of any the upstream sent.
    added: &'r [(HeaderName, HeaderValue)],
    /// The body's length when the upstream declared one (or the
    /// `Content-Length` of a bodyless HEAD/304 answer, passed through).
    pub(crate) length: Option<u64>,
    /// Whether body bytes follow.
    pub(crate) body: bool,
    /// A 101 to a WebSocket upgrade.
    pub(crate) upgrade: bool,
}

impl<'r> Answer<'r> {
    /// The answer to send for an upstream head with `upstream` fields.
    pub(crate) fn new(
        status: StatusCode,
        upstream: Fields,
        location: Option<HeaderValue>,
        added: &'r [(HeaderName, HeaderValue)],
        length: Option<u64>,
        body: bool,
    ) -> Answer<'r> {
        let named = rewrite::connection_named(&upstream)
            .into_iter()
            .map(Box::from)
            .collect();
        Answer {
            status,
            named,
            upstream,
            location,
            added,
            length,
            body,
            upgrade: status == StatusCode::SWITCHING_PROTOCOLS,
        }
    }

    /// The fields for the client, in order: the upstream's without
    /// hop-by-hop and framing fields (the client side writes its own
    /// framing), `Location` rewritten, then the route's own.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let stop = if self.upgrade {
            rewrite::HOP_BY_HOP_TAGS & !tag::bit(tag::UPGRADE)
        } else {
            rewrite::HOP_BY_HOP_TAGS
        } | tag::bit(tag::CONTENT_LENGTH);
        let upstream = self
            .upstream
            .fields()
            .filter(move |f| tag::bit(f.tag) & stop == 0 && self.passes(f.name))
            .map(|f| match &self.location {
                Some(l) if f.tag == tag::LOCATION => (f.name, l.as_bytes()),
                _ => (f.name, f.value),
            });
        let added = self
            .added
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
        upstream.chain(added)
    }

    /// Whether the upstream sent a `Date` (else the client side adds one).
    pub(crate) fn has_date(&self) -> bool {
        self.upstream.has(tag::DATE)
    }

    /// The fields as a map (HTTP/2 answers); names lowercased.
    pub(crate) fn map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.upstream.len() + self.added.len() + 1);
        for (n, v) in self.fields() {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n), HeaderValue::from_bytes(v)) {
                map.append(n, v);
            }
        }
        map
    }

    /// Not replaced by the route's fields, not named by `Connection`.
    fn passes(&self, name: &[u8]) -> bool {
        !self.added.iter().any(|(a, _)| fields::is(name, a))
            && !self.named.iter().any(|c| name.eq_ignore_ascii_case(c))
    }
}
