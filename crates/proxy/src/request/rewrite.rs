//! Pure head rewriting for forwarding: hop-by-hop fields, `Host`, the
//! X-Forwarded-* family and RFC 7239 `Forwarded`, `Location`. No head is
//! rebuilt as a map: a request's fields go upstream through
//! [`Forwarding::fields`], a response's to the client through
//! [`super::Answer`], each filtering the fields as they came while they
//! are written.
//!
//! What goes upstream carries exactly one `Host` (the request's authority,
//! port included: the seed's static-file port-mapping bug came from a proxy
//! rewriting it), no hop-by-hop field, no framing field (the writer adds the
//! one that matches the body it sends), and forwarding fields built only
//! from what we saw on the socket, plus the incoming chain when the peer is
//! a trusted proxy. Property tests in `rewrite_tests.rs` hold it to that.

use std::borrow::Cow;
use std::net::IpAddr;

use http::header::HeaderValue;
use ipnet::IpNet;

use crate::codec::fields::{tag, text, Field};
use crate::codec::{names, tokens, Fields, Lookup, Name};

/// RFC 9110 §7.6.1 and §11.7.4: fields that describe one connection (or
/// authenticate to this proxy) and are never forwarded, plus
/// `Proxy-Connection` (non-standard, still sent by old clients), as tags
/// of recorded heads ([`crate::codec::fields::tag`]). `Upgrade` survives
/// only in a WebSocket upgrade.
pub(crate) const HOP_BY_HOP_TAGS: u32 = {
    use crate::codec::fields::tag::*;
    bit(CONNECTION)
        | bit(PROXY_CONNECTION)
        | bit(KEEP_ALIVE)
        | bit(PROXY_AUTHORIZATION)
        | bit(TE)
        | bit(TRAILER)
        | bit(TRANSFER_ENCODING)
        | bit(UPGRADE)
};

/// What the proxy knows about the client connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer<'a> {
    pub(crate) ip: IpAddr,
    /// `ip` (IPv4-mapped addresses unmapped) as a field value, formatted
    /// once per connection ([`ip_text`]) rather than once per request.
    pub(crate) text: &'a HeaderValue,
    pub(crate) tls: bool,
    pub(crate) trusted: &'a [IpNet],
}

/// A peer address as `X-Forwarded-For` and `X-Real-IP` carry it.
pub(crate) fn ip_text(ip: IpAddr) -> HeaderValue {
    let text = canonical(ip).to_string();
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown"))
}

impl Peer<'_> {
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    pub(crate) fn is_trusted(&self) -> bool {
        self.trusts(self.ip)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The real client: the peer, or — when the peer is a trusted proxy — the
/// rightmost X-Forwarded-For entry that is not itself trusted (nginx
/// `real_ip_recursive on`).
pub(crate) fn client_ip(headers: &impl Lookup, peer: &Peer<'_>) -> IpAddr {
    if !peer.is_trusted() {
        return canonical(peer.ip);
    }
    let mut last = canonical(peer.ip);
    let values: Vec<&str> = headers
        .values(&names::X_FORWARDED_FOR)
        .filter_map(text)
        .collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            return last;
        };
        last = canonical(ip);
        if !peer.trusts(ip) {
            return last;
        }
    }
    last
}

/// Whether the request asks for a WebSocket upgrade (RFC 6455 §4.1, RFC 9110 §7.8).
pub(crate) fn is_upgrade(headers: &impl Lookup) -> bool {
    tokens(headers, &names::UPGRADE).any(|t| t.eq_ignore_ascii_case(b"websocket"))
        && tokens(headers, &names::CONNECTION).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// The fields a head's `Connection` names (RFC 9110 §7.6.1), beyond the
/// fixed hop-by-hop set and `close`: those stop at this hop too.
pub(crate) fn connection_named(headers: &impl Lookup) -> Vec<&[u8]> {
    tokens(headers, &names::CONNECTION)
        .filter(|t| {
            !t.eq_ignore_ascii_case(b"close") && tag::bit(tag::of(t)) & HOP_BY_HOP_TAGS == 0
        })
        .collect()
}

/// The fields the proxy sets on a request going upstream: one `Host`
/// (the authority it routed on) and nginx's usual forwarding set,
/// `X-Real-IP`, `X-Forwarded-For` (`$proxy_add_x_forwarded_for`),
/// `X-Forwarded-Proto` and `X-Forwarded-Host`, plus RFC 7239 `Forwarded`.
/// They are built only from what was seen on the socket; from a trusted
/// peer the incoming `X-Forwarded-For` and `Forwarded` chains are kept and
/// appended to, and its `X-Forwarded-Proto` and `-Host` pass.
pub(crate) struct Forwarding<'a> {
    host: &'a [u8],
    trusted: bool,
    /// Tags of the client's fields that never pass: hop-by-hop (but
    /// `Upgrade` in an upgrade), framing, `Expect`, and those set here.
    stop: u32,
    /// Fields the client's `Connection` named.
    named: Vec<&'a [u8]>,
    x_forwarded_for: Cow<'a, [u8]>,
    x_real_ip: Cow<'a, [u8]>,
    /// `None`: the trusted peer's own passes.
    x_forwarded_proto: Option<&'static str>,
    x_forwarded_host: bool,
    forwarded: Vec<u8>,
}

impl<'a> Forwarding<'a> {
    /// The fields for a request with `fields` from `peer`, on behalf of
    /// `client`, for `host`; `upgrade`: a WebSocket upgrade.
    pub(crate) fn new(
        fields: &'a Fields,
        peer: &Peer<'a>,
        client: IpAddr,
        host: &'a HeaderValue,
        upgrade: bool,
    ) -> Forwarding<'a> {
        let trusted = peer.is_trusted();
        let named = connection_named(fields);
        // A trusted peer's fields pass, and its chains are appended to,
        // unless its Connection names them: those stop at this hop.
        let kept = |n: &Name| trusted && !named.iter().any(|t| n.is(t));
        let passes = |n: &Name| kept(n) && fields.contains(n);
        let chain = |n: &Name| kept(n).then(|| joined(fields, n)).flatten();
        let x_forwarded_for = match chain(&names::X_FORWARDED_FOR) {
            Some(c) => Cow::Owned(append(c, peer.text.as_bytes())),
            None => Cow::Borrowed(peer.text.as_bytes()),
        };
        let x_real_ip = if client == canonical(peer.ip) {
            Cow::Borrowed(peer.text.as_bytes())
        } else {
            Cow::Owned(client.to_string().into_bytes())
        };
        let node = node(peer, host);
        let forwarded = match chain(&names::FORWARDED) {
            Some(c) => append(c, &node),
            None => node,
        };
        let hop = if upgrade {
            HOP_BY_HOP_TAGS & !tag::bit(tag::UPGRADE)
        } else {
            HOP_BY_HOP_TAGS
        };
        Forwarding {
            host: host.as_bytes(),
            trusted,
            stop: hop
                | tag::bit(tag::CONTENT_LENGTH)
                | tag::bit(tag::EXPECT)
                | tag::bit(tag::HOST)
                | tag::bit(tag::X_REAL_IP)
                | tag::bit(tag::X_FORWARDED_FOR)
                | tag::bit(tag::FORWARDED),
            x_forwarded_proto: (!passes(&names::X_FORWARDED_PROTO)).then(|| peer.scheme()),
            x_forwarded_host: !passes(&names::X_FORWARDED_HOST),
            named,
            x_forwarded_for,
            x_real_ip,
            forwarded,
        }
    }

    /// The fields that go upstream, in order: `Host`, the client's that
    /// pass (RFC 9110 §7.6.1: no hop-by-hop field and none `Connection`
    /// names; no framing field, the writer adds the one for the body it
    /// sends; no `Expect`, answered here; none the proxy sets), then the
    /// forwarding fields.
    pub(crate) fn fields<'f>(
        &'f self,
        client: &'f Fields,
    ) -> impl Iterator<Item = (&'f [u8], &'f [u8])> + 'f {
        let host = std::iter::once((&b"host"[..], self.host));
        let ours = [
            Some((&b"x-real-ip"[..], &self.x_real_ip[..])),
            Some((b"x-forwarded-for", &self.x_forwarded_for[..])),
            self.x_forwarded_proto
                .map(|p| (&b"x-forwarded-proto"[..], p.as_bytes())),
            self.x_forwarded_host
                .then_some((&b"x-forwarded-host"[..], self.host)),
            Some((b"forwarded", &self.forwarded[..])),
        ];
        let passed = client
            .fields()
            .filter(|f| self.passes(f))
            .map(|f| (f.name, f.value));
        host.chain(passed).chain(ours.into_iter().flatten())
    }

    fn passes(&self, f: &Field<'_>) -> bool {
        if tag::bit(f.tag) & self.stop != 0 {
            return false;
        }
        if !self.trusted && starts_with_ignore_case(f.name, b"x-forwarded-") {
            return false;
        }
        let set_here = |n: &Name| n.is(f.name);
        if (self.x_forwarded_proto.is_some() && set_here(&names::X_FORWARDED_PROTO))
            || (self.x_forwarded_host && set_here(&names::X_FORWARDED_HOST))
        {
            return false;
        }
        !self.named.iter().any(|t| f.name.eq_ignore_ascii_case(t))
    }
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// One RFC 7239 §4 element, `for=<node>;host="<host>";proto=<scheme>`,
/// assembled from bytes (no formatter); IPv6 nodes and host:port are not
/// tokens and are quoted (§6). A host with a quote or backslash is left out.
fn node(peer: &Peer<'_>, host: &HeaderValue) -> Vec<u8> {
    let ip = peer.text.as_bytes();
    let mut out = Vec::with_capacity(32 + ip.len() + host.len());
    if canonical(peer.ip).is_ipv6() {
        out.extend_from_slice(b"for=\"[");
        out.extend_from_slice(ip);
        out.extend_from_slice(b"]\"");
    } else {
        out.extend_from_slice(b"for=");
        out.extend_from_slice(ip);
    }
    let h = host.as_bytes();
    if host.to_str().is_ok() && !h.contains(&b'"') && !h.contains(&b'\\') {
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(h);
        out.push(b'"');
    }
    out.extend_from_slice(b";proto=");
    out.extend_from_slice(peer.scheme().as_bytes());
    out
}

/// `<chain>, <next>`.
fn append(mut chain: Vec<u8>, next: &[u8]) -> Vec<u8> {
    chain.extend_from_slice(b", ");
    chain.extend_from_slice(next);
    chain
}

/// Every value of `name` that is text, trimmed, joined by ", " as one
/// list (RFC 9110 §5.3); `None` if there is none.
fn joined(headers: &impl Lookup, name: &Name) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let values = headers.values(name).filter_map(text).map(str::trim);
    for v in values.filter(|v| !v.is_empty()) {
        if !out.is_empty() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v.as_bytes());
    }
    (!out.is_empty()).then_some(out)
}

/// nginx's `proxy_redirect default`: a `Location` pointing at the upstream
/// server itself (`http://10.0.0.7:8080/x`) becomes the address the client
/// used (`https://www.example.com/x`); `None`: it stays as it is.
pub(crate) fn relocate(
    location: &[u8],
    server_authority: &str,
    scheme: &str,
    host: Option<&str>,
) -> Option<HeaderValue> {
    let host = host?;
    let loc = text(location)?;
    let rest = loc
        .strip_prefix("http://")
        .or_else(|| loc.strip_prefix("https://"))
        .and_then(|r| r.strip_prefix(server_authority))
        .filter(|r| r.is_empty() || r.starts_with(['/', '?', '#']))?;
    let rest = if rest.is_empty() { "/" } else { rest };
    HeaderValue::from_str(&format!("{scheme}://{host}{rest}")).ok()
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
