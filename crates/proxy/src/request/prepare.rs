//! From a parsed request head to what goes upstream, with no I/O: the
//! body limit, the authority (an absolute-form target's or HTTP/2's
//! `:authority` wins over `Host`, RFC 9112 §3.2.2), the route, the
//! balancing key, and the serialized upstream head.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::HeaderValue;
use http::{Method, StatusCode, Version};

use super::rewrite::{self, Forwarding, Peer};
use crate::codec::fields::{tag, text};
use crate::codec::framing::Framing;
use crate::codec::request::Parts;
use crate::codec::write::{self, BodyHeader, ConnectionHeader};
use crate::codec::{host, names, Fields, Lookup};
use crate::error::{ErrorKind, ProxyError};
use crate::snapshot::route::RouteRt;
use crate::snapshot::Snapshot;
use crate::upstream::balance::{sticky, Balance};
use crate::upstream::UpstreamRt;

/// A request ready to go upstream.
#[derive(Debug)]
pub(crate) struct Prepared<'s> {
    pub(crate) upstream: &'s Arc<UpstreamRt>,
    pub(crate) route: &'s RouteRt,
    pub(crate) method: Method,
    /// The serialized head for the upstream.
    pub(crate) head: Vec<u8>,
    /// How the body goes upstream.
    pub(crate) body: Framing,
    /// A WebSocket upgrade.
    pub(crate) upgrade: bool,
    /// Idempotent and bodyless: may be sent again to another server (RFC 9110 §9.2.2).
    pub(crate) replayable: bool,
    pub(crate) client: IpAddr,
    /// The authority the client asked for (routing, `Location` rewriting).
    pub(crate) host: HeaderValue,
    pub(crate) scheme: &'static str,
    /// The node named by the sticky cookie, for `balance = "sticky"`.
    pub(crate) sticky: Option<Box<str>>,
}

/// Prepares `parts` (with a body framed as `framing`) from `peer`.
pub(crate) fn prepare<'s>(
    snap: &'s Snapshot,
    parts: Parts,
    framing: Framing,
    peer: &Peer<'_>,
    client: IpAddr,
) -> Result<Prepared<'s>, ProxyError> {
    if let Framing::Length(n) = framing {
        if snap.limits.max_body > 0 && n > snap.limits.max_body {
            return Err(ProxyError::client(ErrorKind::BodyTooLarge));
        }
    }
    let (route, up, host) = route(snap, &parts)?;
    let sticky = (up.policy() == Balance::Sticky)
        .then(|| sticky_node(&parts.fields, &up.sticky_cookie))
        .flatten();
    let upgrade = parts.version == Version::HTTP_11 && rewrite::is_upgrade(&parts.fields);
    let head = upstream_head(
        &parts,
        framing,
        upgrade,
        &Forwarding::new(&parts.fields, peer, client, &host, upgrade),
    );
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    Ok(Prepared {
        upstream: up,
        route,
        replayable: idempotent && framing == Framing::Empty && !upgrade,
        head,
        method: parts.method,
        body: framing,
        upgrade,
        client,
        host,
        scheme: peer.scheme(),
        sticky,
    })
}

/// The route, its upstream, and the `Host` that goes upstream.
fn route<'s>(
    snap: &'s Snapshot,
    parts: &Parts,
) -> Result<(&'s RouteRt, &'s Arc<UpstreamRt>, HeaderValue), ProxyError> {
    let authority = authority(parts)?;
    let host_str = authority.as_ref().and_then(|h| h.to_str().ok());
    let no_route = || ProxyError::proxy(ErrorKind::NoRoute);
    let route = snap
        .router
        .find(host_str, parts.uri.path())
        .ok_or_else(no_route)?;
    let up = snap.upstreams.get(route.upstream).ok_or_else(no_route)?;
    // An HTTP/1.0 client may send no Host: the upstream's name stands in
    // (nginx's $proxy_host).
    let host = match authority {
        Some(h) => h,
        None => HeaderValue::from_str(&up.name).unwrap_or(HeaderValue::from_static("localhost")),
    };
    Ok((route, up, host))
}

/// The serialized upstream head: origin-form target, rewritten fields, and
/// the one framing field for the body we will send.
fn upstream_head(parts: &Parts, framing: Framing, upgrade: bool, fwd: &Forwarding<'_>) -> Vec<u8> {
    let target = match parts.uri.path_and_query() {
        _ if parts.uri == "*" => "*",
        Some(p) => p.as_str(),
        None => "/",
    };
    let body = match framing {
        Framing::Length(n) => BodyHeader::Length(n),
        Framing::Chunked => BodyHeader::Chunked,
        Framing::Empty | Framing::Close => BodyHeader::None,
    };
    let connection = if upgrade {
        ConnectionHeader::Upgrade
    } else {
        ConnectionHeader::Default
    };
    let mut head = Vec::with_capacity(384 + parts.fields.len() * 48);
    write::request_head(
        &mut head,
        &parts.method,
        target,
        fwd.fields(&parts.fields),
        body,
        connection,
    );
    head
}

/// The request's authority: the target's (absolute-form, or HTTP/2's
/// `:authority`), else `Host`; checked here for HTTP/2 (the HTTP/1 codec
/// checked `Host` already).
fn authority(parts: &Parts) -> Result<Option<HeaderValue>, ProxyError> {
    let bad = |reason| {
        ProxyError::client(ErrorKind::Refused {
            status: StatusCode::BAD_REQUEST,
            reason,
        })
    };
    if let Some(a) = parts.uri.authority() {
        if a.as_str().contains('@') || !host::valid_authority(a.as_str().as_bytes()) {
            return Err(bad("invalid :authority"));
        }
        return HeaderValue::from_str(a.as_str())
            .map(Some)
            .map_err(|_| bad("invalid :authority"));
    }
    let mut hosts = parts.fields.values(&names::HOST);
    match (hosts.next(), hosts.next()) {
        (None, _) if parts.version >= Version::HTTP_2 => Err(bad("missing :authority")),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(bad("more than one Host")),
        // An HTTP/1 head's Host was checked as the codec parsed it.
        (Some(h), None) if parts.version >= Version::HTTP_2 && !host::valid_authority(h) => {
            Err(bad("invalid Host"))
        }
        (Some(_), None) => parts
            .fields
            .first_shared(tag::HOST)
            .and_then(|h| HeaderValue::from_maybe_shared(h).ok())
            .map(Some)
            .ok_or_else(|| bad("invalid Host")),
    }
}

fn sticky_node(fields: &Fields, cookie: &str) -> Option<Box<str>> {
    fields
        .values(&names::COOKIE)
        .filter_map(text)
        .find_map(|c| sticky::node_in_cookie(c, cookie).map(Into::into))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: Version, uri: &str, lines: &[u8]) -> Parts {
        Parts {
            method: Method::GET,
            uri: uri.parse().unwrap(),
            version,
            fields: Fields::parse_lines(lines),
        }
    }

    /// HTTP/2 heads never met the HTTP/1 codec: their `Host` and
    /// `:authority` are checked here.
    #[test]
    fn an_http2_authority_is_checked_here() {
        let h2 = |uri, lines| authority(&parts(Version::HTTP_2, uri, lines));
        let ok = h2("/", b"host: app.example:8080\r\n\r\n").unwrap();
        assert_eq!(ok.unwrap(), "app.example:8080");
        let ok = h2("https://app.example/", b"\r\n").unwrap();
        assert_eq!(ok.unwrap(), "app.example");
        for (uri, lines) in [
            ("/", &b"host: a/b\r\n\r\n"[..]),
            ("/", b"host: a..b\r\n\r\n"),
            ("/", b"host: a\r\nhost: b\r\n\r\n"),
            ("/", b"\r\n"),
            ("https://user@app.example/", b"\r\n"),
        ] {
            let e = h2(uri, lines).expect_err(uri);
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{uri} {lines:?}");
        }
    }
}
