//! Header fields as positions in their head, from one parse.
//!
//! httparse hands out slices of the read buffer, which the buffer's next
//! read would overwrite. Copying each value out costs an allocation per
//! field; parsing again over the head once it has left the buffer as
//! `Bytes` costs a second parse. Instead the first parse records where
//! each name and value lie ([`Spans::record`]), the head leaves the
//! buffer, and [`Fields`] keeps the head with those positions. A response
//! goes on to the client from them as it came; a request becomes a map
//! ([`Fields::map`]) for the rewrite, every value a slice of the head.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Where a part of a head lies in it (`start..end`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Where `part`, a slice of `base`, lies in it. An empty part (which
    /// need not point into `base`) and anything outside are the empty span.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        let end = start
            .checked_add(part.len())
            .filter(|&e| e <= base.len() && !part.is_empty());
        match (u32::try_from(start), end.map(u32::try_from)) {
            (Ok(start), Some(Ok(end))) => Span { start, end },
            _ => Span::default(),
        }
    }

    /// The bytes at this span of `head`; `None` if the span is not in it.
    pub(crate) fn slice(self, head: &Bytes) -> Option<Bytes> {
        let (s, e) = (self.start as usize, self.end as usize);
        (e <= head.len()).then(|| head.slice(s..e))
    }

    /// The bytes at this span of `head`; empty if the span is not in it.
    fn bytes(self, head: &[u8]) -> &[u8] {
        head.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// Which part of a field was invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldError {
    Name,
    Value,
}

/// Where httparse found each name and value, before the head leaves the buffer.
pub(crate) struct Spans(Vec<(Span, Span)>);

impl Spans {
    /// Records the fields httparse found in `base`.
    pub(crate) fn record(base: &[u8], headers: &[httparse::Header<'_>]) -> Spans {
        Spans(
            headers
                .iter()
                .map(|h| (Span::of(base, h.name.as_bytes()), Span::of(base, h.value)))
                .collect(),
        )
    }
}

/// The header fields of one head as it was sent: its bytes, and where
/// each name and value lie in them. Looking a field up scans them (a head
/// has a dozen or so); nothing is copied, hashed or reference-counted per
/// field, which is what a response passed on costs when it is kept as it
/// came rather than rebuilt as a map.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields {
    head: Bytes,
    spans: Vec<(Span, Span)>,
}

impl Fields {
    /// The fields `spans` recorded, over `head` (the bytes they were recorded in).
    pub(crate) fn new(head: Bytes, spans: Spans) -> Fields {
        Fields {
            head,
            spans: spans.0,
        }
    }

    /// How many fields.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Every field, in order: name as sent, value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|&(n, v)| (n.bytes(&self.head), v.bytes(&self.head)))
    }

    /// The fields as a map, with room for `extra` more; values are
    /// slices of the head.
    pub(crate) fn map(&self, extra: usize) -> Result<HeaderMap, FieldError> {
        let mut map = HeaderMap::with_capacity(self.spans.len() + extra);
        for &(name, value) in &self.spans {
            let name =
                HeaderName::from_bytes(name.bytes(&self.head)).map_err(|_| FieldError::Name)?;
            let value = value.slice(&self.head).ok_or(FieldError::Value)?;
            let value = HeaderValue::from_maybe_shared(value).map_err(|_| FieldError::Value)?;
            map.append(name, value);
        }
        Ok(map)
    }
}

/// Header fields looked up by name: a map (HTTP/2 requests), or a head's
/// own [`Fields`].
pub(crate) trait Lookup {
    /// The values of every field named `name`, in order.
    fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a;

    fn contains(&self, name: &HeaderName) -> bool {
        self.values(name).next().is_some()
    }
}

impl Lookup for HeaderMap {
    fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).into_iter().map(HeaderValue::as_bytes)
    }
}

impl Lookup for Fields {
    fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| is(n, name))
            .map(|(_, v)| v)
    }
}

/// Whether a name as sent is `name` (names are case-insensitive, RFC 9110 §5.1).
pub(crate) fn is(sent: &[u8], name: &HeaderName) -> bool {
    sent.eq_ignore_ascii_case(name.as_str().as_bytes())
}

/// A value as text, where `HeaderValue::to_str` would give it: visible
/// ASCII, spaces and tabs only.
pub(crate) fn text(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_find_parts_and_refuse_strangers() {
        let base = b"Name: value\r\n";
        assert_eq!(Span::of(base, &base[6..11]), Span { start: 6, end: 11 });
        assert_eq!(Span::of(base, b""), Span::default(), "empty");
        assert_eq!(Span::of(base, b"elsewhere"), Span::default(), "not in base");
        let head = Bytes::from_static(b"Name: value\r\n");
        let s = Span::of(base, &base[6..11]);
        assert_eq!(s.slice(&head).as_deref(), Some(&b"value"[..]));
        assert_eq!(
            s.slice(&Bytes::from_static(b"Na")),
            None,
            "span past the head"
        );
    }
}
