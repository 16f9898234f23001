//! Serializing heads. The fields given here have already been through
//! the rewrite (`request::rewrite`, `request::Answer`): no hop-by-hop
//! fields, no framing fields. The one framing field is written from
//! [`BodyHeader`], so a head we send can never carry two lengths.

use http::{Method, StatusCode};

/// The framing field a head gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyHeader {
    /// None: no body, or a body delimited by closing the connection.
    None,
    Length(u64),
    Chunked,
}

/// What the `Connection` field says, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectionHeader {
    /// Nothing: HTTP/1.1's default, keep-alive.
    Default,
    Close,
    /// HTTP/1.0 clients that asked to keep the connection.
    KeepAlive,
    Upgrade,
}

/// `HTTP/1.1 100 Continue`, sent before reading a body the client holds back.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Appends the head of a request to an upstream server.
pub(crate) fn request_head<'f>(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
    body: BodyHeader,
    connection: ConnectionHeader,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    fields(out, headers, body, connection);
}

/// Appends the head of a response to a client; `date` is added when the
/// upstream sent none (`date` is `None`: RFC 9110 §6.6.1, a recipient with
/// a clock must).
pub(crate) fn response_head<'f>(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
    body: BodyHeader,
    connection: ConnectionHeader,
    date: Option<&[u8]>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(date) = date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
    }
    fields(out, headers, body, connection);
}

fn fields<'f>(
    out: &mut Vec<u8>,
    headers: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
    body: BodyHeader,
    connection: ConnectionHeader,
) {
    for (name, value) in headers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    match body {
        BodyHeader::None => {}
        BodyHeader::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        BodyHeader::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(match connection {
        ConnectionHeader::Default => b"",
        ConnectionHeader::Close => b"connection: close\r\n".as_slice(),
        ConnectionHeader::KeepAlive => b"connection: keep-alive\r\n",
        ConnectionHeader::Upgrade => b"connection: upgrade\r\n",
    });
    out.extend_from_slice(b"\r\n");
}

/// One of our own short plain-text answers (errors), as complete bytes.
pub(crate) fn short_response(status: StatusCode, text: &str, close: bool, date: &[u8]) -> Vec<u8> {
    let h = [(&b"content-type"[..], &b"text/plain; charset=utf-8"[..])];
    let mut out = Vec::with_capacity(160 + text.len());
    let connection = if close {
        ConnectionHeader::Close
    } else {
        ConnectionHeader::Default
    };
    response_head(
        &mut out,
        status,
        h,
        BodyHeader::Length(text.len() as u64),
        connection,
        Some(date),
    );
    out.extend_from_slice(text.as_bytes());
    out
}

fn itoa(n: u64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_exactly_one_framing_field() {
        let h = [(&b"host"[..], &b"example.com"[..])];
        let mut out = Vec::new();
        request_head(
            &mut out,
            &Method::POST,
            "/a?b=1",
            h,
            BodyHeader::Chunked,
            ConnectionHeader::Default,
        );
        assert_eq!(
            out,
            b"POST /a?b=1 HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let r = short_response(StatusCode::PAYLOAD_TOO_LARGE, "too big\n", true, b"D");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "HTTP/1.1 413 Payload Too Large\r\ndate: D\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: 8\r\nconnection: close\r\n\r\ntoo big\n"
        );
    }
}
