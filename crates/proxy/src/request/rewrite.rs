//! Pure request/response head rewriting for forwarding: hop-by-hop headers,
//! the X-Forwarded-* family and RFC 7239 `Forwarded`, `Location` rewriting.
//!
//! Host is never touched: the backend sees exactly what the client sent,
//! port included (the seed's static-file port-mapping bug came from a proxy
//! rewriting it).

use std::io::Write;
use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

/// RFC 9110 §7.6.1: headers that describe one connection and must not be forwarded,
/// plus `Proxy-Connection` (non-standard, still sent by old clients). Parsed
/// names, so removing them costs a hash lookup each, not a name parse.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TRAILER,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// What the proxy knows about the client connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer<'a> {
    pub ip: IpAddr,
    pub tls: bool,
    pub trusted: &'a [IpNet],
}

impl Peer<'_> {
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
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
pub fn client_ip(headers: &HeaderMap, peer: &Peer<'_>) -> IpAddr {
    if !peer.trusts(peer.ip) {
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

/// Whether the request asks for a protocol upgrade (RFC 9110 §7.8), e.g. WebSocket.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && has_token(headers, &header::CONNECTION, "upgrade")
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// RFC 9110 §7.6.1: drops `Connection` and every header it names, and the
/// fixed hop-by-hop set. With `keep_upgrade`, `Upgrade` survives and
/// `Connection: upgrade` is set again (the upgrade is end to end for us).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in named {
            if !(keep_upgrade && n == header::UPGRADE) {
                headers.remove(n);
            }
        }
    }
    for n in &HOP_BY_HOP {
        if keep_upgrade && n == header::UPGRADE {
            continue;
        }
        headers.remove(n);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Sets X-Real-IP, X-Forwarded-For/Proto/Host and Forwarded on a request
/// about to go upstream. Incoming values are kept (appended to) only when the
/// peer is a trusted proxy.
pub fn add_forwarding(
    headers: &mut HeaderMap,
    peer: &Peer<'_>,
    client: IpAddr,
    host: Option<&HeaderValue>,
) {
    let trusted = peer.trusts(peer.ip);
    let peer_ip = canonical(peer.ip);
    let mut buf = [0u8; 512];

    // X-Forwarded-For: <incoming>, <peer>  (nginx $proxy_add_x_forwarded_for)
    let xff = match headers.get(&X_FORWARDED_FOR).filter(|_| trusted) {
        Some(prev) => format_value(&mut buf, |w| {
            write!(w, "{}, {peer_ip}", prev.to_str().unwrap_or(""))
        }),
        None => format_value(&mut buf, |w| write!(w, "{peer_ip}")),
    };
    if let Some(v) = xff {
        headers.insert(&X_FORWARDED_FOR, v);
    }
    if let Some(v) = format_value(&mut buf, |w| write!(w, "{client}")) {
        headers.insert(&X_REAL_IP, v);
    }
    if !trusted || !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(peer.scheme()));
    }
    if !trusted || !headers.contains_key(&X_FORWARDED_HOST) {
        match host {
            Some(h) => headers.insert(&X_FORWARDED_HOST, h.clone()),
            None => headers.remove(&X_FORWARDED_HOST),
        };
    }

    // RFC 7239 §4: for=<node>;host=<host>;proto=<scheme>; IPv6 nodes and
    // host:port are not tokens and must be quoted (§6).
    let host = host
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.contains(['"', '\\']));
    let prev = headers
        .get(header::FORWARDED)
        .filter(|_| trusted)
        .and_then(|v| v.to_str().ok());
    let fwd = format_value(&mut buf, |w| {
        if let Some(p) = prev {
            write!(w, "{p}, ")?;
        }
        match peer_ip {
            IpAddr::V4(ip) => write!(w, "for={ip}")?,
            IpAddr::V6(ip) => write!(w, "for=\"[{ip}]\"")?,
        }
        if let Some(h) = host {
            write!(w, ";host=\"{h}\"")?;
        }
        write!(w, ";proto={}", peer.scheme())
    });
    if let Some(v) = fwd {
        headers.insert(header::FORWARDED, v);
    }
}

/// Formats into `buf` and makes a header value; `None` if it does not fit or is invalid.
fn format_value(
    buf: &mut [u8],
    f: impl FnOnce(&mut &mut [u8]) -> std::io::Result<()>,
) -> Option<HeaderValue> {
    let total = buf.len();
    let mut w: &mut [u8] = buf;
    f(&mut w).ok()?;
    let used = total - w.len();
    HeaderValue::from_bytes(&buf[..used]).ok()
}

/// nginx's `proxy_redirect default`: a `Location` pointing at the upstream
/// server itself (`http://10.0.0.7:8080/x`) is rewritten to the address the
/// client used (`https://www.example.com/x`).
pub fn rewrite_location(
    headers: &mut HeaderMap,
    server_authority: &str,
    scheme: &str,
    host: Option<&str>,
) {
    let Some(host) = host else { return };
    let Some(loc) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let rest = loc
        .strip_prefix("http://")
        .or_else(|| loc.strip_prefix("https://"))
        .and_then(|r| r.strip_prefix(server_authority))
        .filter(|r| r.is_empty() || r.starts_with(['/', '?', '#']));
    if let Some(rest) = rest {
        let rest = if rest.is_empty() { "/" } else { rest };
        if let Ok(v) = HeaderValue::from_str(&format!("{scheme}://{host}{rest}")) {
            headers.insert(header::LOCATION, v);
        }
    }
}

#[cfg(test)]
mod tests;
