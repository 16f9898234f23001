//! Header fields as slices of their head, from one parse.
//!
//! httparse hands out slices of the read buffer, which the buffer's next
//! read would overwrite. Copying each value out costs an allocation per
//! field; parsing again over the head once it has left the buffer as
//! `Bytes` costs a second parse. Instead the first parse records where
//! each name and value lie ([`Fields::record`]), the head leaves the
//! buffer, and the map is built from those positions ([`Fields::map`]):
//! every value a reference-counted slice of the one head.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::MAX_HEADERS;

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
}

/// Which part of a field was invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldError {
    Name,
    Value,
}

/// The header fields of one head, as positions in it.
pub(crate) struct Fields {
    spans: [(Span, Span); MAX_HEADERS],
    len: usize,
}

impl Fields {
    /// Records the fields httparse found in `base` (at most [`MAX_HEADERS`],
    /// which is all httparse is given room for).
    pub(crate) fn record(base: &[u8], headers: &[httparse::Header<'_>]) -> Fields {
        let mut f = Fields {
            spans: [(Span::default(), Span::default()); MAX_HEADERS],
            len: 0,
        };
        for (slot, h) in f.spans.iter_mut().zip(headers) {
            *slot = (Span::of(base, h.name.as_bytes()), Span::of(base, h.value));
            f.len += 1;
        }
        f
    }

    /// The fields as a map over `head` (the bytes `record` saw), with room
    /// for `extra` more.
    pub(crate) fn map(&self, head: &Bytes, extra: usize) -> Result<HeaderMap, FieldError> {
        let mut map = HeaderMap::with_capacity(self.len + extra);
        for &(name, value) in &self.spans[..self.len] {
            let name = name.slice(head).ok_or(FieldError::Name)?;
            let name = HeaderName::from_bytes(&name).map_err(|_| FieldError::Name)?;
            let value = value.slice(head).ok_or(FieldError::Value)?;
            let value = HeaderValue::from_maybe_shared(value).map_err(|_| FieldError::Value)?;
            map.append(name, value);
        }
        Ok(map)
    }
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
