//! Header fields as positions in their head, from one parse.
//!
//! httparse hands out slices of the read buffer, which the buffer's next
//! read would overwrite. Copying each value out costs an allocation per
//! field; parsing again over the head once it has left the buffer as
//! `Bytes` costs a second parse. Instead the first parse records where
//! each name and value lie ([`Spans::record`]), the head leaves the
//! buffer, and [`Fields`] keeps the head with those positions. Requests
//! and responses go on from them as they came, minus what the rewrite
//! leaves out: no map is built per head.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

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

    /// The span of a range (an empty one is the empty span, as in [`Span::of`]).
    fn at(r: std::ops::Range<usize>) -> Span {
        match (u32::try_from(r.start), u32::try_from(r.end)) {
            (Ok(start), Ok(end)) if start < end => Span { start, end },
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

/// Names the proxy looks up or filters in every head, recognised once as
/// the head is recorded: looking one of them up, or asking whether a field
/// is one of them, compares a byte (its tag) instead of names. Sets of
/// tags are bits.
pub(crate) mod tag {
    pub(crate) const CONNECTION: u8 = 0;
    pub(crate) const CONTENT_LENGTH: u8 = 1;
    pub(crate) const TRANSFER_ENCODING: u8 = 2;
    pub(crate) const DATE: u8 = 3;
    pub(crate) const LOCATION: u8 = 4;
    pub(crate) const UPGRADE: u8 = 5;
    pub(crate) const TE: u8 = 6;
    pub(crate) const TRAILER: u8 = 7;
    pub(crate) const PROXY_AUTHORIZATION: u8 = 8;
    pub(crate) const KEEP_ALIVE: u8 = 9;
    pub(crate) const PROXY_CONNECTION: u8 = 10;
    pub(crate) const HOST: u8 = 11;
    pub(crate) const EXPECT: u8 = 12;
    pub(crate) const FORWARDED: u8 = 13;
    pub(crate) const X_REAL_IP: u8 = 14;
    pub(crate) const X_FORWARDED_FOR: u8 = 15;
    /// Any other name.
    pub(crate) const OTHER: u8 = u8::MAX;

    /// A set of tags with only `t` in it.
    pub(crate) const fn bit(t: u8) -> u32 {
        if t < 32 {
            1 << t
        } else {
            0
        }
    }

    /// The names, by tag.
    pub(super) const NAMES: [&[u8]; 16] = [
        b"connection",
        b"content-length",
        b"transfer-encoding",
        b"date",
        b"location",
        b"upgrade",
        b"te",
        b"trailer",
        b"proxy-authorization",
        b"keep-alive",
        b"proxy-connection",
        b"host",
        b"expect",
        b"forwarded",
        b"x-real-ip",
        b"x-forwarded-for",
    ];

    /// The tag of a name as sent (names are case-insensitive, RFC 9110 §5.1).
    ///
    /// Every field of every head is tagged, so this is a hot path: the
    /// length and the first letter leave at most one known name to
    /// compare with (a scan of all sixteen cost about 200 instructions a
    /// field).
    pub(crate) fn of(name: &[u8]) -> u8 {
        // `| 0x20` lowercases a letter; the comparison below judges the rest.
        let first = name.first().map_or(0, |b| b | 0x20);
        let candidate = match (name.len(), first) {
            (10, b'c') => CONNECTION,
            (14, b'c') => CONTENT_LENGTH,
            (17, b't') => TRANSFER_ENCODING,
            (4, b'd') => DATE,
            (8, b'l') => LOCATION,
            (7, b'u') => UPGRADE,
            (2, b't') => TE,
            (7, b't') => TRAILER,
            (19, b'p') => PROXY_AUTHORIZATION,
            (10, b'k') => KEEP_ALIVE,
            (16, b'p') => PROXY_CONNECTION,
            (4, b'h') => HOST,
            (6, b'e') => EXPECT,
            (9, b'f') => FORWARDED,
            (9, b'x') => X_REAL_IP,
            (15, b'x') => X_FORWARDED_FOR,
            _ => return OTHER,
        };
        if same_but_case(name, NAMES[usize::from(candidate)]) {
            candidate
        } else {
            OTHER
        }
    }

    /// Whether `name` is `known` (lower-case letters and '-', as long as
    /// `name`) in any case.
    ///
    /// Compares words rather than bytes: three 8-byte words for a name of
    /// 8 to 24 bytes (at its start, at 8 and at its end, overlapping
    /// where it is shorter), two 4-byte or two 2-byte words for a shorter
    /// one. Where a byte of `known` is a letter (bit 0x40 set), `b | 0x20
    /// == k` holds exactly when `b` is `k` in either case; at a '-' the
    /// bytes must be equal.
    fn same_but_case(name: &[u8], known: &[u8]) -> bool {
        let n = name.len();
        let same = |at: usize, width: usize| match (word(name, at, width), word(known, at, width)) {
            (Some(b), Some(k)) => b | ((k & 0x4040_4040_4040_4040) >> 1) == k,
            _ => false,
        };
        n == known.len()
            && match n {
                8..=24 => same(0, 8) & same(8.min(n - 8), 8) & same(n - 8, 8),
                4..=7 => same(0, 4) & same(n - 4, 4),
                2..=3 => same(0, 2) & same(n - 2, 2),
                _ => false,
            }
    }

    /// The `width` (8, 4 or 2) bytes of `b` at `at`, as a number; `None`
    /// past its end.
    #[inline(always)]
    fn word(b: &[u8], at: usize, width: usize) -> Option<u64> {
        let bytes = b.get(at..at + width)?;
        Some(match width {
            8 => u64::from_le_bytes(bytes.try_into().ok()?),
            4 => u64::from(u32::from_le_bytes(bytes.try_into().ok()?)),
            _ => u64::from(u16::from_le_bytes(bytes.try_into().ok()?)),
        })
    }
}

/// A name to look fields up by (lower case, as [`HeaderName`] has it),
/// with its [`tag`]. The names looked up on every request are constants
/// in [`names`]: a lookup in [`Fields`] then compares a constant tag, and
/// never tags the name it looks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Name {
    text: &'static str,
    tag: u8,
}

impl Name {
    /// `text` (a lower-case name), tagged.
    #[cfg(test)]
    pub(crate) fn new(text: &'static str) -> Name {
        Name {
            text,
            tag: tag::of(text.as_bytes()),
        }
    }

    /// The name, lower case (the proxy itself compares with [`Name::is`]).
    #[cfg(test)]
    pub(crate) fn text(self) -> &'static str {
        self.text
    }

    /// Whether a name as sent is this one (names are case-insensitive,
    /// RFC 9110 §5.1).
    pub(crate) fn is(self, sent: &[u8]) -> bool {
        sent.eq_ignore_ascii_case(self.text.as_bytes())
    }
}

/// The names looked up on every request, each with its tag (a test holds
/// every one to the tag its name has).
pub(crate) mod names {
    use super::{tag, Name};

    const fn known(text: &'static str, tag: u8) -> Name {
        Name { text, tag }
    }

    pub(crate) const CONNECTION: Name = known("connection", tag::CONNECTION);
    pub(crate) const CONTENT_LENGTH: Name = known("content-length", tag::CONTENT_LENGTH);
    pub(crate) const TRANSFER_ENCODING: Name = known("transfer-encoding", tag::TRANSFER_ENCODING);
    pub(crate) const LOCATION: Name = known("location", tag::LOCATION);
    pub(crate) const UPGRADE: Name = known("upgrade", tag::UPGRADE);
    pub(crate) const HOST: Name = known("host", tag::HOST);
    pub(crate) const EXPECT: Name = known("expect", tag::EXPECT);
    pub(crate) const FORWARDED: Name = known("forwarded", tag::FORWARDED);
    pub(crate) const X_FORWARDED_FOR: Name = known("x-forwarded-for", tag::X_FORWARDED_FOR);
    pub(crate) const X_FORWARDED_PROTO: Name = known("x-forwarded-proto", tag::OTHER);
    pub(crate) const X_FORWARDED_HOST: Name = known("x-forwarded-host", tag::OTHER);
    pub(crate) const COOKIE: Name = known("cookie", tag::OTHER);
    pub(crate) const REFERER: Name = known("referer", tag::OTHER);
    pub(crate) const USER_AGENT: Name = known("user-agent", tag::OTHER);

    /// Every one of them.
    #[cfg(test)]
    pub(super) const ALL: [Name; 14] = [
        CONNECTION,
        CONTENT_LENGTH,
        TRANSFER_ENCODING,
        LOCATION,
        UPGRADE,
        HOST,
        EXPECT,
        FORWARDED,
        X_FORWARDED_FOR,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        COOKIE,
        REFERER,
        USER_AGENT,
    ];
}

/// One field of a recorded head: where its name and value lie, and its tag.
#[derive(Clone, Copy, Debug)]
struct Slot {
    name: Span,
    value: Span,
    tag: u8,
}

/// Where httparse found each name and value, before the head leaves the buffer.
pub(crate) struct Spans {
    slots: Vec<Slot>,
    /// The tags present, as bits.
    present: u32,
}

impl Spans {
    /// Records the fields httparse found in `base`.
    pub(crate) fn record(base: &[u8], headers: &[httparse::Header<'_>]) -> Spans {
        let at = headers
            .iter()
            .map(|h| (Span::of(base, h.name.as_bytes()), Span::of(base, h.value)));
        Spans::tagged(base, at)
    }

    /// The fields at `at` (name, value) in `base`, each with its tag.
    fn tagged(base: &[u8], at: impl Iterator<Item = (Span, Span)>) -> Spans {
        let mut present = 0;
        let slots = at
            .map(|(name, value)| {
                let tag = tag::of(name.bytes(base));
                present |= tag::bit(tag);
                Slot { name, value, tag }
            })
            .collect();
        Spans { slots, present }
    }
}

/// One field: its name as sent, its value, its [`tag`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) tag: u8,
}

/// The header fields of one head as it was sent: its bytes, and where
/// each name and value lie in them. A lookup reads the fields with the
/// name's tag (a head has a dozen or so); nothing is copied, hashed or
/// reference-counted per field, which is what a head passed on costs
/// when it is kept as it came rather than rebuilt as a map.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields {
    head: Bytes,
    slots: Vec<Slot>,
    present: u32,
}

impl Fields {
    /// The fields `spans` recorded, over `head` (the bytes they were recorded in).
    pub(crate) fn new(head: Bytes, spans: Spans) -> Fields {
        Fields {
            head,
            slots: spans.slots,
            present: spans.present,
        }
    }

    /// How many fields.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every field, in order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        self.slots.iter().map(|s| Field {
            name: s.name.bytes(&self.head),
            value: s.value.bytes(&self.head),
            tag: s.tag,
        })
    }

    /// The fields of `map` (an HTTP/2 request's), as one head of
    /// `name: value` lines. HTTP/2 may split `Cookie` into one field per
    /// cookie; they become one field joined by "; ", as an HTTP/1.1
    /// request carries them (RFC 9113 §8.2.3).
    pub(crate) fn from_map(map: &HeaderMap) -> Fields {
        let size: usize = map
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        let mut head = Vec::with_capacity(size);
        let mut at = Vec::with_capacity(map.len());
        let mut line = |head: &mut Vec<u8>,
                        name: &HeaderName,
                        parts: &mut dyn Iterator<Item = &HeaderValue>| {
            let n = head.len()..head.len() + name.as_str().len();
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            let start = head.len();
            for (i, part) in parts.enumerate() {
                if i > 0 {
                    head.extend_from_slice(b"; ");
                }
                head.extend_from_slice(part.as_bytes());
            }
            at.push((Span::at(n), Span::at(start..head.len())));
            head.extend_from_slice(b"\r\n");
        };
        for name in map.keys() {
            let mut values = map.get_all(name).iter();
            if name == header::COOKIE {
                line(&mut head, name, &mut values);
            } else {
                for v in values {
                    line(&mut head, name, &mut std::iter::once(v));
                }
            }
        }
        let spans = Spans::tagged(&head, at.into_iter());
        Fields::new(Bytes::from(head), spans)
    }

    /// The first value of a field with tag `t`, as a slice of the head.
    pub(crate) fn first_shared(&self, t: u8) -> Option<Bytes> {
        let s = self.slots.iter().find(|s| s.tag == t)?;
        s.value.slice(&self.head)
    }

    /// Whether a field with tag `t` is there.
    pub(crate) fn has(&self, t: u8) -> bool {
        self.present & tag::bit(t) != 0
    }
}

/// Header fields looked up by name: a map (HTTP/2 requests), or a head's
/// own [`Fields`].
pub(crate) trait Lookup {
    /// The values of every field named `name`, in order.
    fn values<'a>(&'a self, name: &'a Name) -> impl Iterator<Item = &'a [u8]> + 'a;

    fn contains(&self, name: &Name) -> bool {
        self.values(name).next().is_some()
    }
}

/// An HTTP/2 request's map: `http` parses the name to find its entry.
impl Lookup for HeaderMap {
    fn values<'a>(&'a self, name: &'a Name) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name.text)
            .into_iter()
            .map(HeaderValue::as_bytes)
    }
}

impl Lookup for Fields {
    fn values<'a>(&'a self, name: &'a Name) -> impl Iterator<Item = &'a [u8]> + 'a {
        let t = name.tag;
        let absent = t != tag::OTHER && self.present & tag::bit(t) == 0;
        let slots = if absent { &[][..] } else { &self.slots[..] };
        slots
            .iter()
            .filter(move |s| match t {
                tag::OTHER => name.is(s.name.bytes(&self.head)),
                t => s.tag == t,
            })
            .map(|s| s.value.bytes(&self.head))
    }
}

/// Whether a name as sent is `name` (names are case-insensitive, RFC 9110 §5.1).
pub(crate) fn is(sent: &[u8], name: &HeaderName) -> bool {
    sent.eq_ignore_ascii_case(name.as_str().as_bytes())
}

/// A value as text, where `HeaderValue::to_str` would give it: visible
/// ASCII, spaces and tabs only.
pub(crate) fn text(value: &[u8]) -> Option<&str> {
    is_text(value)
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// Whether a value is visible ASCII, spaces and tabs only.
pub(crate) fn is_text(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
}

#[cfg(test)]
impl Fields {
    /// The fields of `lines`: `name: value\r\n` lines and an empty one.
    pub(crate) fn parse_lines(lines: &[u8]) -> Fields {
        let head = Bytes::copy_from_slice(lines);
        let mut slots = [httparse::EMPTY_HEADER; super::MAX_HEADERS];
        let spans = match httparse::parse_headers(&head, &mut slots) {
            Ok(httparse::Status::Complete((_, headers))) => Spans::record(&head, headers),
            other => panic!("{other:?} from {lines:?}"),
        };
        Fields::new(head, spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(lines: &[u8]) -> Fields {
        Fields::parse_lines(lines)
    }

    /// HTTP/2's map becomes the same fields, empty values included, its
    /// cookies one field.
    #[test]
    fn a_map_becomes_fields() {
        let mut map = HeaderMap::new();
        map.append(header::HOST, HeaderValue::from_static("a"));
        map.append("x-empty", HeaderValue::from_static(""));
        map.append(header::COOKIE, HeaderValue::from_static("1"));
        map.append(header::COOKIE, HeaderValue::from_static("2"));
        let f = Fields::from_map(&map);
        let all: Vec<_> = f.fields().map(|x| (x.name, x.value, x.tag)).collect();
        assert_eq!(
            all,
            [
                (&b"host"[..], &b"a"[..], tag::HOST),
                (b"x-empty", b"", tag::OTHER),
                (b"cookie", b"1; 2", tag::OTHER)
            ]
        );
        assert_eq!(f.first_shared(tag::HOST).as_deref(), Some(&b"a"[..]));
        assert!(f.has(tag::HOST) && !f.has(tag::CONNECTION));
        assert_eq!(f.values(&names::COOKIE).count(), 1);
    }

    #[test]
    fn every_known_name_has_its_tag() {
        // Written out apart from `tag::NAMES`, so a constant that points
        // at the wrong name there is caught.
        let named = [
            (tag::CONNECTION, "Connection"),
            (tag::CONTENT_LENGTH, "Content-Length"),
            (tag::TRANSFER_ENCODING, "Transfer-Encoding"),
            (tag::DATE, "Date"),
            (tag::LOCATION, "Location"),
            (tag::UPGRADE, "Upgrade"),
            (tag::TE, "TE"),
            (tag::TRAILER, "Trailer"),
            (tag::PROXY_AUTHORIZATION, "Proxy-Authorization"),
            (tag::KEEP_ALIVE, "Keep-Alive"),
            (tag::PROXY_CONNECTION, "Proxy-Connection"),
            (tag::HOST, "Host"),
            (tag::EXPECT, "Expect"),
            (tag::FORWARDED, "Forwarded"),
            (tag::X_REAL_IP, "X-Real-IP"),
            (tag::X_FORWARDED_FOR, "X-Forwarded-For"),
        ];
        for (t, name) in named {
            assert_eq!(tag::of(name.as_bytes()), t, "{name}");
        }
        for (i, k) in tag::NAMES.iter().enumerate() {
            assert_eq!(tag::of(k), i as u8);
            assert_eq!(tag::of(&k.to_ascii_uppercase()), i as u8);
        }
        assert_eq!(tag::of(b"x-connection"), tag::OTHER);
        assert_eq!(tag::bit(tag::OTHER), 0);
    }

    /// Each name looked up by its tag has the tag its name has.
    #[test]
    fn every_looked_up_name_has_its_tag() {
        for n in names::ALL {
            assert_eq!(n.tag, Name::new(n.text).tag, "{}", n.text);
            assert_eq!(http::HeaderName::from_static(n.text).as_str(), n.text);
        }
    }

    proptest::proptest! {
        /// The quick dispatch tags every name as a scan of all known names
        /// would: known names in any case, their near misses, anything else.
        #[test]
        fn tags_agree_with_a_scan(
            known in 0..tag::NAMES.len(),
            flips in proptest::collection::vec(proptest::bool::ANY, 19),
            change in proptest::option::of((0usize..19, proptest::num::u8::ANY)),
            other in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
        ) {
            let scan = |name: &[u8]| {
                tag::NAMES
                    .iter()
                    .position(|k| name.eq_ignore_ascii_case(k))
                    .map_or(tag::OTHER, |i| i as u8)
            };
            let mut name: Vec<u8> = tag::NAMES[known]
                .iter()
                .zip(&flips)
                .map(|(b, up)| if *up { b.to_ascii_uppercase() } else { *b })
                .collect();
            if let Some((at, byte)) = change {
                let at = at % name.len();
                name[at] = byte;
            }
            proptest::prop_assert_eq!(tag::of(&name), scan(&name));
            proptest::prop_assert_eq!(tag::of(&other), scan(&other));
        }
    }

    /// A lookup finds every field of the name, in any case, known or not,
    /// and nothing when it is absent.
    #[test]
    fn lookups_by_tag_and_by_name() {
        let f = recorded(b"Connection: a\r\nX-One: 1\r\nCONNECTION: b\r\nx-one: 2\r\n\r\n");
        let conn: Vec<_> = f.values(&names::CONNECTION).collect();
        assert_eq!(conn, [&b"a"[..], b"b"]);
        let x_one = Name::new("x-one");
        let one: Vec<_> = f.values(&x_one).collect();
        assert_eq!(one, [&b"1"[..], b"2"]);
        assert!(!f.contains(&names::CONTENT_LENGTH));
        assert!(!f.contains(&Name::new("x-two")));
        let tags: Vec<_> = f.fields().map(|x| x.tag).collect();
        assert_eq!(
            tags,
            [tag::CONNECTION, tag::OTHER, tag::CONNECTION, tag::OTHER]
        );
    }

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
