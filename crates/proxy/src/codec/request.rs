//! Request heads from clients (RFC 9112 §2-§3, §6): parsed with httparse,
//! then held to the framing rules nginx and HAProxy enforce before a
//! request may reach routing. Everything that makes the message's extent
//! ambiguous is refused here, so a request that leaves this module has
//! exactly one length.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Uri, Version};

use super::fields::{names, tag, Fields, Lookup, Span, Spans};
use super::framing::Framing;
use super::{host, tokens, Refusal, MAX_HEADERS};

/// A request as far as the proxy reads it, from either client protocol.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) method: Method,
    /// Origin-form, absolute-form or `*` (HTTP/1); HTTP/2's scheme,
    /// authority and path.
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    /// The header fields as the client sent them.
    pub(crate) fields: Fields,
}

/// A complete, valid request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) parts: Parts,
    pub(crate) framing: Framing,
    /// The client allows another request on this connection afterwards.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` on a request with a body.
    pub(crate) expect_continue: bool,
}

/// Parses the head at the start of `buf`: `Ok(None)` while incomplete.
/// A complete head is consumed from `buf` (valid or not); its target is a
/// slice of its bytes and its fields are positions in them ([`Fields`]).
///
/// `max` bounds the whole head; over it the answer is 414 when the request
/// line itself did not fit, else 431.
pub(crate) fn parse(buf: &mut BytesMut, max: usize) -> Result<Option<RequestHead>, Refusal> {
    let (len, method, path, version, spans) = {
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match req_parse(&mut req, buf, &mut slots) {
            Ok(httparse::Status::Complete(n)) if n <= max => n,
            Ok(_) if buf.len() <= max => return Ok(None),
            Ok(_) => return Err(too_large(buf, max)),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "too many header fields",
                ))
            }
            Err(_) if buf.len() > max && !line_complete(buf, max) => {
                return Err(too_large(buf, max))
            }
            Err(_) => return Err(Refusal::bad("malformed request head")),
        };
        let method = req
            .method
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .ok_or(Refusal::bad("invalid method"))?;
        let path = Span::of(buf, req.path.unwrap_or("").as_bytes());
        let version = match req.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        (len, method, path, version, Spans::record(buf, req.headers))
    };
    let head = buf.split_to(len).freeze();
    let uri = target(&method, path.slice(&head).unwrap_or_default())?;
    let fields = Fields::new(head, spans);
    check_host(&fields, version)?;
    let framing = framing(&fields, version)?;
    let expect_continue = expect(&fields)? && framing != Framing::Empty;
    let keep_alive = keep_alive(&fields, version);
    Ok(Some(RequestHead {
        parts: Parts {
            method,
            uri,
            version,
            fields,
        },
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// httparse's request parser over header slots it need not initialise.
fn req_parse<'h, 'b>(
    req: &mut httparse::Request<'h, 'b>,
    buf: &'b [u8],
    fields: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> httparse::Result<usize> {
    httparse::ParserConfig::default().parse_request_with_uninit_headers(req, buf, fields)
}

/// Whether the request line ended within the first `max` bytes.
fn line_complete(buf: &[u8], max: usize) -> bool {
    buf[..max.min(buf.len())].contains(&b'\n')
}

fn too_large(buf: &[u8], max: usize) -> Refusal {
    if line_complete(buf, max) {
        Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request head over max_header_size",
        )
    } else {
        Refusal::new(
            StatusCode::URI_TOO_LONG,
            "request line over max_header_size",
        )
    }
}

/// RFC 9112 §3.2: origin-form, absolute-form (http/https with a host and no
/// userinfo), or `*` for OPTIONS. CONNECT's authority-form is for forward
/// proxies: 405.
fn target(method: &Method, path: Bytes) -> Result<Uri, Refusal> {
    if method == Method::CONNECT {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not served",
        ));
    }
    let bad = || Refusal::bad("invalid request target");
    if path.starts_with(b"/") {
        return Uri::from_maybe_shared(path).map_err(|_| bad());
    }
    let t = std::str::from_utf8(&path).map_err(|_| bad())?;
    if t == "*" && method == Method::OPTIONS {
        return Ok(Uri::from_static("*"));
    }
    let uri = Uri::try_from(t).map_err(|_| bad())?;
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let authority = uri.authority().ok_or_else(bad)?;
    if !scheme_ok
        || authority.as_str().contains('@')
        || !host::valid_authority(authority.as_str().as_bytes())
    {
        return Err(bad());
    }
    Ok(uri)
}

/// RFC 9112 §3.2: exactly one valid Host in HTTP/1.1; at most one in HTTP/1.0.
fn check_host(h: &Fields, version: Version) -> Result<(), Refusal> {
    let mut all = h.values(&names::HOST);
    match (all.next(), all.next()) {
        (None, _) if version == Version::HTTP_11 => Err(Refusal::bad("missing Host")),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(Refusal::bad("more than one Host")),
        (Some(v), None) if host::valid_authority(v) => Ok(()),
        (Some(_), None) => Err(Refusal::bad("invalid Host")),
    }
}

/// RFC 9112 §6.1-§6.3 for requests, as nginx and HAProxy apply them:
/// `Content-Length` with `Transfer-Encoding` is refused (not "TE wins"), so
/// are differing lengths, lists, and codings we cannot decode.
fn framing(h: &Fields, version: Version) -> Result<Framing, Refusal> {
    let te = h.has(tag::TRANSFER_ENCODING);
    let cl =
        content_length(h).map_err(|_| Refusal::bad("invalid or conflicting Content-Length"))?;
    match (te, cl) {
        (true, Some(_)) => Err(Refusal::bad("Content-Length with Transfer-Encoding")),
        (true, None) if version == Version::HTTP_10 => {
            Err(Refusal::bad("Transfer-Encoding in an HTTP/1.0 request"))
        }
        (true, None) => match transfer_coding(h) {
            Coding::Chunked => Ok(Framing::Chunked),
            Coding::Invalid => Err(Refusal::bad("invalid Transfer-Encoding")),
            Coding::Other => Err(Refusal::new(
                StatusCode::NOT_IMPLEMENTED,
                "transfer coding not implemented",
            )),
        },
        (false, None) => Ok(Framing::Empty),
        (false, Some(n)) => Ok(Framing::Length(n)),
    }
}

/// The one `Content-Length` value; identical repeats are one value (RFC 9110
/// §8.6), a list or a differing repeat is an error.
pub(crate) fn content_length(h: &impl Lookup) -> Result<Option<u64>, ()> {
    let mut out = None;
    for b in h.values(&names::CONTENT_LENGTH) {
        if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
        let n = b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if out.is_some_and(|o| o != n) {
            return Err(());
        }
        out = Some(n);
    }
    Ok(out)
}

/// What `Transfer-Encoding` asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// Exactly `chunked`.
    Chunked,
    /// Empty, or `chunked` repeated or not last (RFC 9112 §6.1).
    Invalid,
    /// A coding we do not decode (gzip, ...).
    Other,
}

pub(crate) fn transfer_coding(h: &impl Lookup) -> Coding {
    let mut n = 0;
    let mut chunked = 0;
    let mut last_chunked = false;
    for t in tokens(h, &names::TRANSFER_ENCODING) {
        last_chunked = t.eq_ignore_ascii_case(b"chunked");
        chunked += usize::from(last_chunked);
        n += 1;
    }
    match (n, chunked, last_chunked) {
        (1, 1, true) => Coding::Chunked,
        // "gzip, chunked": valid, but we would have to decode gzip.
        (_, 1, true) => Coding::Other,
        (0, _, _) | (_, 1.., _) => Coding::Invalid,
        _ => Coding::Other,
    }
}

/// Whether `Expect: 100-continue` was sent; any other expectation is 417.
fn expect(h: &Fields) -> Result<bool, Refusal> {
    match h.values(&names::EXPECT).next() {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case(b"100-continue") => Ok(true),
        Some(_) => Err(Refusal::new(
            StatusCode::EXPECTATION_FAILED,
            "unsupported expectation",
        )),
    }
}

/// RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
pub(crate) fn keep_alive(h: &impl Lookup, version: Version) -> bool {
    let mut close = false;
    let mut keep = false;
    for t in tokens(h, &names::CONNECTION) {
        close |= t.eq_ignore_ascii_case(b"close");
        keep |= t.eq_ignore_ascii_case(b"keep-alive");
    }
    !close && (version == Version::HTTP_11 || keep)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
