//! Which upstream serves a request: virtual host, then longest path prefix.
//!
//! Hosts match exactly (case-insensitive, port ignored) or by `*.suffix`
//! (any depth, like nginx's `*.example.com`; the longest suffix wins). A host
//! that matches but has no route for the path falls back to the routes
//! without a host, which form the default.

use std::collections::HashMap;

use http::{HeaderName, HeaderValue};
use stackd_common::config::proxy::Route;

/// One route, resolved against the snapshot's upstream list.
#[derive(Debug)]
pub(crate) struct RouteRt {
    pub(crate) path: Box<str>,
    /// Index into `Snapshot::upstreams`.
    pub(crate) upstream: usize,
    pub(crate) add_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Routes of one host, longest path first.
#[derive(Debug, Default)]
struct Group(Vec<RouteRt>);

#[derive(Debug, Default)]
pub(crate) struct Router {
    exact: HashMap<Box<str>, Group>,
    /// (".example.com", routes), longest suffix first.
    wildcard: Vec<(Box<str>, Group)>,
    default: Group,
}

// === impl Group ===

impl Group {
    fn find(&self, path: &str) -> Option<&RouteRt> {
        self.0.iter().find(|r| path.starts_with(&*r.path))
    }

    fn sort(&mut self) {
        self.0.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
    }
}

// === impl Router ===

impl Router {
    /// `upstream_index` resolves a route's upstream name (validated to exist).
    pub(crate) fn new(routes: &[Route], upstream_index: impl Fn(&str) -> Option<usize>) -> Router {
        let mut r = Router::default();
        for route in routes {
            let Some(upstream) = upstream_index(&route.upstream) else {
                continue;
            };
            let add_headers = route
                .add_headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::from_bytes(k.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect();
            let rt = RouteRt {
                path: route.path.as_str().into(),
                upstream,
                add_headers,
            };
            match route.host.as_deref().map(str::to_ascii_lowercase) {
                None => r.default.0.push(rt),
                Some(h) => match h.strip_prefix('*') {
                    Some(suffix) => match r.wildcard.iter_mut().find(|(s, _)| **s == *suffix) {
                        Some((_, g)) => g.0.push(rt),
                        None => r.wildcard.push((suffix.into(), Group(vec![rt]))),
                    },
                    None => r.exact.entry(h.into()).or_default().0.push(rt),
                },
            }
        }
        r.default.sort();
        r.exact.values_mut().for_each(Group::sort);
        r.wildcard.iter_mut().for_each(|(_, g)| g.sort());
        r.wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        r
    }

    /// The route for `host` (as sent, maybe with port, any case) and `path`.
    pub(crate) fn find(&self, host: Option<&str>, path: &str) -> Option<&RouteRt> {
        if self.exact.is_empty() && self.wildcard.is_empty() {
            // No route names a host (the usual single-site config): no
            // host to normalize and hash on every request.
            return self.default.find(path);
        }
        let mut buf = [0u8; 256];
        let host = host.and_then(|h| normalize(h, &mut buf));
        if let Some(h) = host {
            if let Some(r) = self.exact.get(h).and_then(|g| g.find(path)) {
                return Some(r);
            }
            for (suffix, g) in &self.wildcard {
                if h.len() > suffix.len() && h.ends_with(&**suffix) {
                    if let Some(r) = g.find(path) {
                        return Some(r);
                    }
                }
            }
        }
        self.default.find(path)
    }
}

/// Lower-cases `host` without its port into `buf`, without allocating.
fn normalize<'b>(host: &str, buf: &'b mut [u8; 256]) -> Option<&'b str> {
    let bare = if host.starts_with('[') {
        // RFC 3986 §3.2.2 IP-literal: keep the brackets, drop the port.
        host.find(']').map_or(host, |i| &host[..=i])
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let bare = bare.strip_suffix('.').unwrap_or(bare);
    let out = buf.get_mut(..bare.len())?;
    out.copy_from_slice(bare.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: Option<&str>, path: &str, upstream: &str) -> Route {
        Route {
            host: host.map(Into::into),
            path: path.into(),
            upstream: upstream.into(),
            add_headers: Default::default(),
        }
    }

    fn router() -> Router {
        let routes = [
            route(None, "/", "default"),
            route(None, "/api", "api"),
            route(Some("test.example.com"), "/", "test"),
            route(Some("test.example.com"), "/static/", "static"),
            route(Some("*.example.com"), "/", "wild"),
            route(Some("*.deep.example.com"), "/", "deep"),
        ];
        let names = ["default", "api", "test", "static", "wild", "deep"];
        Router::new(&routes, |n| names.iter().position(|x| *x == n))
    }

    fn at(r: &Router, host: Option<&str>, path: &str) -> usize {
        r.find(host, path).unwrap().upstream
    }

    #[test]
    fn exact_host_then_longest_prefix() {
        let r = router();
        assert_eq!(at(&r, Some("test.example.com"), "/"), 2);
        assert_eq!(at(&r, Some("TEST.example.com:8080"), "/static/a.css"), 3);
        assert_eq!(at(&r, Some("test.example.com."), "/x"), 2);
    }

    #[test]
    fn wildcard_longest_suffix() {
        let r = router();
        assert_eq!(at(&r, Some("a.example.com"), "/"), 4);
        assert_eq!(at(&r, Some("a.b.example.com"), "/"), 4);
        assert_eq!(at(&r, Some("x.deep.example.com"), "/"), 5);
        // "*.example.com" does not match the bare domain.
        assert_eq!(at(&r, Some("example.com"), "/"), 0);
    }

    #[test]
    fn default_routes_and_no_match() {
        let r = router();
        assert_eq!(at(&r, None, "/api/v1"), 1);
        assert_eq!(at(&r, Some("other.org"), "/"), 0);
        assert_eq!(at(&r, Some("[::1]:80"), "/api"), 1);
        let empty = Router::new(&[route(Some("a.org"), "/x", "u")], |_| Some(0));
        assert!(empty.find(Some("b.org"), "/x").is_none());
        assert!(empty.find(Some("a.org"), "/y").is_none());
        let long = "a".repeat(300);
        assert!(empty.find(Some(&long), "/x").is_none());
    }
}
