//! Pure head rewriting for forwarding: hop-by-hop fields, `Host`, the
//! X-Forwarded-* family and RFC 7239 `Forwarded`, `Location`. (A response
//! is not rewritten as a map: [`super::Answer`] passes its fields on as
//! they came, through the same hop-by-hop rules.)
//!
//! What goes upstream carries exactly one `Host` (the request's authority,
//! port included: the seed's static-file port-mapping bug came from a proxy
//! rewriting it), no hop-by-hop field, no framing field (the writer adds the
//! one that matches the body it sends), and forwarding fields built only
//! from what we saw on the socket, plus the incoming chain when the peer is
//! a trusted proxy. Property tests in `rewrite_tests.rs` hold it to that.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::codec::fields::text;
use crate::codec::{tokens, Lookup};

/// RFC 9110 §7.6.1 and §11.7.4: fields that describe one connection (or
/// authenticate to this proxy) and are never forwarded, plus
/// `Proxy-Connection` (non-standard, still sent by old clients).
/// `Upgrade` survives only in a WebSocket upgrade.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// [`HOP_BY_HOP`] as tags of recorded heads ([`crate::codec::fields::tag`]).
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

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

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
pub(crate) fn client_ip(headers: &HeaderMap, peer: &Peer<'_>) -> IpAddr {
    if !peer.is_trusted() {
        return canonical(peer.ip);
    }
    let mut last = canonical(peer.ip);
    let values: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
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
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    tokens(headers, &header::UPGRADE).any(|t| t.eq_ignore_ascii_case("websocket"))
        && tokens(headers, &header::CONNECTION).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// The fields a head's `Connection` names (RFC 9110 §7.6.1), beyond the
/// fixed hop-by-hop set and `close`: those stop at this hop too.
pub(crate) fn connection_named(headers: &impl Lookup) -> Vec<&str> {
    tokens(headers, &header::CONNECTION)
        .filter(|t| !t.eq_ignore_ascii_case("close") && !fixed_hop_by_hop(t.as_bytes(), false))
        .collect()
}

/// A name from the fixed hop-by-hop set; `Upgrade` is not one when
/// `keep_upgrade` (a WebSocket upgrade).
pub(crate) fn fixed_hop_by_hop(name: &[u8], keep_upgrade: bool) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_str().as_bytes()))
        && !(keep_upgrade && name.eq_ignore_ascii_case(b"upgrade"))
}

/// RFC 9110 §7.6.1: drops `Connection`, every field it names, and the fixed
/// hop-by-hop set; `Upgrade` stays when `keep_upgrade` (a WebSocket
/// upgrade; the writer then sends `Connection: upgrade`).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names finds which of the set are there: a head
    // without any costs no hash lookup, one with `Connection: keep-alive`
    // (most upstream responses) one removal.
    let mut present = [false; HOP_BY_HOP.len()];
    for k in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == k) {
            present[i] = true;
        }
    }
    if present[0] {
        let named: Vec<HeaderName> = connection_named(headers)
            .into_iter()
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    for (n, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        if !(keep_upgrade && n == header::UPGRADE) {
            headers.remove(n);
        }
    }
}

/// The request head as it goes upstream: hop-by-hop and framing fields
/// out, `Expect` out (we answer `100 Continue` ourselves), one `Host`, and
/// the forwarding fields.
pub(crate) fn request_headers(
    headers: &mut HeaderMap,
    peer: &Peer<'_>,
    client: IpAddr,
    host: &HeaderValue,
    upgrade: bool,
) {
    strip_hop_by_hop(headers, upgrade);
    if headers
        .keys()
        .any(|k| k == header::CONTENT_LENGTH || k == header::EXPECT)
    {
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::EXPECT);
    }
    headers.insert(header::HOST, host.clone());
    forwarding(headers, peer, client, host);
}

/// Sets X-Real-IP, X-Forwarded-For/Proto/Host and Forwarded. From an
/// untrusted peer every incoming `Forwarded`, `X-Real-IP` and
/// `X-Forwarded-*` field is removed first, whatever its size; from a
/// trusted one the chain is kept and appended to.
pub(crate) fn forwarding(
    headers: &mut HeaderMap,
    peer: &Peer<'_>,
    client: IpAddr,
    host: &HeaderValue,
) {
    let trusted = peer.is_trusted();
    let peer_ip = canonical(peer.ip);
    let incoming = headers.keys().any(is_forwarding);
    let prev_xff = (trusted && incoming)
        .then(|| joined(headers, &X_FORWARDED_FOR))
        .flatten();
    let prev_fwd = (trusted && incoming)
        .then(|| joined(headers, &header::FORWARDED))
        .flatten();
    if !trusted && incoming {
        let foreign: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-forwarded-"))
            .cloned()
            .collect();
        for k in foreign {
            headers.remove(k);
        }
        headers.remove(header::FORWARDED);
    }
    if incoming {
        headers.remove(&X_REAL_IP);
    }

    // X-Forwarded-For: <incoming>, <peer>  (nginx $proxy_add_x_forwarded_for)
    match prev_xff {
        None => {
            headers.insert(&X_FORWARDED_FOR, peer.text.clone());
        }
        Some(chain) => set(
            headers,
            &X_FORWARDED_FOR,
            append(Some(chain), format_args!("{peer_ip}")),
        ),
    }
    if client == peer_ip {
        headers.insert(&X_REAL_IP, peer.text.clone());
    } else {
        set(headers, &X_REAL_IP, client.to_string());
    }
    if !(incoming && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(peer.scheme()));
    }
    if !(incoming && headers.contains_key(&X_FORWARDED_HOST)) {
        headers.insert(&X_FORWARDED_HOST, host.clone());
    }
    let node = node(peer, host);
    match prev_fwd {
        None => {
            headers.insert(header::FORWARDED, node);
        }
        Some(chain) => set(
            headers,
            &header::FORWARDED,
            append(Some(chain), format_args!("{}", node.to_str().unwrap_or(""))),
        ),
    }
}

/// A field the forwarding rewrite replaces or appends to.
fn is_forwarding(k: &HeaderName) -> bool {
    k == header::FORWARDED || k == X_REAL_IP || k.as_str().starts_with("x-forwarded-")
}

/// One RFC 7239 §4 element, `for=<node>;host="<host>";proto=<scheme>`,
/// assembled from bytes (no formatter); IPv6 nodes and host:port are not
/// tokens and are quoted (§6). A host with a quote or backslash is left out.
fn node(peer: &Peer<'_>, host: &HeaderValue) -> HeaderValue {
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
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
        .unwrap_or(HeaderValue::from_static("for=unknown"))
}

/// `<chain>, <next>`, or `<next>` alone.
fn append(chain: Option<String>, next: std::fmt::Arguments<'_>) -> String {
    let mut out = chain.unwrap_or_default();
    if !out.is_empty() {
        out.push_str(", ");
    }
    let _ = out.write_fmt(next);
    out
}

/// Every value of `name`, joined by ", " as one list (RFC 9110 §5.3).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out = String::new();
    let values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    for v in values.filter(|v| !v.trim().is_empty()) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(v.trim());
    }
    (!out.is_empty()).then_some(out)
}

/// Replaces `name` with `value`; a value that cannot be a header (it came
/// from a valid one plus addresses, so it always can) removes the field.
fn set(headers: &mut HeaderMap, name: &HeaderName, value: String) {
    match HeaderValue::try_from(value) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
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
