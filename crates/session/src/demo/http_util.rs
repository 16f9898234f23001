//! Small response and body helpers for the demo routes.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};

pub(crate) type Resp = Response<Full<Bytes>>;

pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Session pages differ per user: never let a cache share them.
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) fn json(status: StatusCode, v: &serde_json::Value) -> Resp {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    respond(status, "application/json", body)
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    respond(status, "text/plain; charset=utf-8", body.into())
}

/// Reads a request body frame by frame: at most `limit` bytes (413 beyond,
/// or at once when Content-Length says so), at most `pause` between two
/// frames (408, nginx's `client_body_timeout`). Returns the length and, if
/// `keep`, the bytes; answering early makes hyper close the connection
/// instead of reading the rest.
pub async fn read_body(
    mut body: Incoming,
    limit: u64,
    pause: Duration,
    keep: bool,
) -> Result<(u64, Bytes), Resp> {
    let too_large = || {
        let mut r = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("413 body larger than {limit} bytes\n"),
        );
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        r
    };
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let mut n: u64 = 0;
    let mut kept = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(pause, body.frame()).await {
            Err(_) => {
                let mut r = text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("408 no body bytes for {pause:?}\n"),
                );
                r.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                return Err(r);
            }
            Ok(None) => break,
            Ok(Some(f)) => f.map_err(|e| {
                text(
                    StatusCode::BAD_REQUEST,
                    format!("400 could not read the body: {e}\n"),
                )
            })?,
        };
        if let Some(d) = frame.data_ref() {
            n += d.len() as u64;
            if n > limit {
                return Err(too_large());
            }
            if keep {
                kept.extend_from_slice(d);
            }
        }
    }
    Ok((n, kept.freeze()))
}

/// `application/x-www-form-urlencoded` value of `key` (`+` is a space).
pub(crate) fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| percent_decode(k).as_deref() == Some(key))
        .and_then(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// Minimal HTML escaping for text and attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_decode() {
        assert_eq!(
            form_value("a=1&user=J%C3%BCrgen+K", "user").as_deref(),
            Some("Jürgen K")
        );
        assert_eq!(form_value("user=%zz", "user"), None);
        assert_eq!(form_value("x=1", "user"), None);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
