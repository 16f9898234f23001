//! Response heads from upstream servers (RFC 9112 §4, §6.3). A response we
//! cannot frame with certainty is a [`BadResponse`]: the client gets a 502,
//! the reason is logged and counted, and that upstream connection is closed
//! (never pooled), because whatever follows on it is unknowable.

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::{Method, StatusCode, Version};

use super::fields::{names, Fields, Lookup, Spans};
use super::framing::Framing;
use super::request::{content_length, keep_alive, transfer_coding, Coding};
use super::MAX_HEADERS;
pub(crate) use crate::error::BadResponse;

/// A complete response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    /// The fields as the server sent them.
    pub(crate) fields: Fields,
    pub(crate) framing: Framing,
    /// The server allows another request on this connection.
    pub(crate) keep_alive: bool,
}

/// What the start of the buffer held.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Not a whole head yet; nothing consumed.
    Partial,
    /// An interim 1xx (not 101), consumed and to be skipped.
    Interim,
    Head(ResponseHead),
}

/// Parses the response head at the start of `buf`, for a request with
/// `method`, and consumes it. The head leaves the buffer as one shared
/// `Bytes`, and every header value is a slice of it ([`Fields`]).
pub(crate) fn parse(
    buf: &mut BytesMut,
    max: usize,
    method: &Method,
) -> Result<Parsed, BadResponse> {
    let (len, code, minor, spans) = {
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        match resp_parse(&mut resp, buf, &mut slots) {
            Ok(httparse::Status::Complete(n)) if n <= max => {
                (n, resp.code, resp.version, Spans::record(buf, resp.headers))
            }
            Ok(_) if buf.len() <= max => return Ok(Parsed::Partial),
            Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(BadResponse::HeadTooLarge),
            Err(_) => return Err(BadResponse::BadHead),
        }
    };
    let status = code
        .filter(|c| (100..600).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(BadResponse::BadHead)?;
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        buf.advance(len);
        return Ok(Parsed::Interim);
    }
    let version = match minor {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let fields = Fields::new(buf.split_to(len).freeze(), spans);
    let framing = framing(&fields, status, version, method)?;
    Ok(Parsed::Head(ResponseHead {
        status,
        keep_alive: keep_alive(&fields, version) && framing != Framing::Close,
        fields,
        framing,
    }))
}

/// httparse's response parser over header slots it need not initialise.
fn resp_parse<'h, 'b>(
    resp: &mut httparse::Response<'h, 'b>,
    buf: &'b [u8],
    fields: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> httparse::Result<usize> {
    httparse::ParserConfig::default().parse_response_with_uninit_headers(resp, buf, fields)
}

/// RFC 9112 §6.3, strictly: ambiguity is an error even where the body is
/// known to be empty, because it says the server's framing cannot be trusted.
fn framing(
    h: &Fields,
    status: StatusCode,
    version: Version,
    method: &Method,
) -> Result<Framing, BadResponse> {
    let te = h.contains(&names::TRANSFER_ENCODING);
    let cl = content_length(h).map_err(|()| BadResponse::ConflictingLength)?;
    if te && cl.is_some() {
        return Err(BadResponse::AmbiguousLength);
    }
    if te && version == Version::HTTP_10 {
        return Err(BadResponse::BadHead);
    }
    let bodyless = method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if bodyless {
        return Ok(Framing::Empty);
    }
    if te {
        return match transfer_coding(h) {
            Coding::Chunked => Ok(Framing::Chunked),
            Coding::Invalid => Err(BadResponse::BadHead),
            Coding::Other => Err(BadResponse::UnsupportedCoding),
        };
    }
    Ok(match cl {
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(wire: &str) -> Result<ResponseHead, BadResponse> {
        match parse(&mut BytesMut::from(wire), 8192, &Method::GET)? {
            Parsed::Head(h) => Ok(h),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn framings() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").unwrap();
        assert!(!h.keep_alive, "HTTP/1.0 without keep-alive");
        let h = head("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(
            h.framing,
            Framing::Length(5),
            "identical repeats are one value"
        );
        match parse(
            &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"[..]),
            100,
            &Method::HEAD,
        ) {
            Ok(Parsed::Head(h)) => assert_eq!(h.framing, Framing::Empty),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_heads() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                BadResponse::AmbiguousLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                BadResponse::ConflictingLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
                BadResponse::ConflictingLength,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                BadResponse::ConflictingLength,
            ),
            ("HTTP/1.1 2OO OK\r\n\r\n", BadResponse::BadHead),
            ("HTTP/1.1 700 Odd\r\n\r\n", BadResponse::BadHead),
            ("SMTP ready\r\n\r\n", BadResponse::BadHead),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                BadResponse::UnsupportedCoding,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                BadResponse::BadHead,
            ),
            (
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                BadResponse::BadHead,
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(head(wire).map(|h| h.status), Err(want), "{wire:?}");
        }
        let big = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(9000));
        assert_eq!(head(&big).map(|h| h.status), Err(BadResponse::HeadTooLarge));
    }

    #[test]
    fn interim_and_partial() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"[..]);
        assert!(matches!(
            parse(&mut buf, 100, &Method::GET),
            Ok(Parsed::Interim)
        ));
        assert_eq!(&buf[..], b"HTTP/1.1 200", "the interim head is consumed");
        assert!(matches!(
            parse(&mut buf, 100, &Method::GET),
            Ok(Parsed::Partial)
        ));
        assert_eq!(&buf[..], b"HTTP/1.1 200", "a partial head stays");
    }

    /// A complete head leaves the buffer; what follows it (the body's
    /// first bytes) stays, and the values are the head's own bytes.
    #[test]
    fn a_head_is_consumed_and_its_values_kept() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-A: one\r\nContent-Length: 5\r\n\r\nhello"[..]);
        let Ok(Parsed::Head(h)) = parse(&mut buf, 100, &Method::GET) else {
            panic!("no head");
        };
        assert_eq!(&buf[..], b"hello");
        assert_eq!(
            h.fields
                .fields()
                .map(|f| (f.name, f.value))
                .collect::<Vec<_>>(),
            [(&b"X-A"[..], &b"one"[..]), (b"Content-Length", b"5")]
        );
        assert_eq!(h.framing, Framing::Length(5));
    }
}
