//! The session cookie: building `Set-Cookie` and finding ours in `Cookie`.
//!
//! The cookie is a browser-session cookie (no `Max-Age`): the server-side TTL
//! in the store is the only clock, so there is one place where a session ends.
//! `HttpOnly` is always set, because no script needs the session id and an XSS
//! bug must not be able to read it.

use http::header::{HeaderMap, COOKIE};
use stackd_common::config::demo_backend::{CookieConfig, SameSite};

use crate::id::CookieValue;

/// Cookie attributes, checked once when the service starts.
#[derive(Clone, Debug)]
pub struct CookieSettings {
    pub name: String,
    pub domain: Option<String>,
    pub path: String,
    pub secure: bool,
    pub same_site: SameSite,
}

// === impl CookieSettings ===

impl From<&CookieConfig> for CookieSettings {
    fn from(c: &CookieConfig) -> Self {
        CookieSettings {
            name: c.name.clone(),
            domain: c.domain.clone(),
            path: c.path.clone(),
            secure: c.secure,
            same_site: c.same_site,
        }
    }
}

impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings::from(&CookieConfig::default())
    }
}

impl CookieSettings {
    /// `Set-Cookie` that hands `value` to the browser.
    pub fn set(&self, value: &CookieValue) -> String {
        self.render(&value.to_string(), "")
    }

    /// `Set-Cookie` that makes the browser forget the session (logout).
    pub fn expire(&self) -> String {
        self.render("", "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    }

    fn render(&self, value: &str, lifetime: &str) -> String {
        let mut s = format!("{}={value}; Path={}", self.name, self.path);
        if let Some(d) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(d);
        }
        s.push_str(lifetime);
        s.push_str("; HttpOnly");
        if self.secure {
            s.push_str("; Secure");
        }
        s.push_str(match self.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        s
    }

    /// The first well-formed session cookie in the request, if any.
    ///
    /// Browsers may send several cookies of the same name (different paths);
    /// malformed ones are skipped rather than failing the request.
    pub fn find(&self, headers: &HeaderMap) -> Option<CookieValue> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.name)
            .find_map(|(_, value)| CookieValue::parse(value.trim_matches('"')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionId;

    fn value() -> CookieValue {
        CookieValue {
            id: SessionId::generate(),
            node: Some("be1".into()),
        }
    }

    #[test]
    fn set_cookie_has_every_attribute() {
        let s = CookieSettings {
            name: "SID".into(),
            domain: Some("example.com".into()),
            path: "/app".into(),
            secure: true,
            same_site: SameSite::Strict,
        };
        let v = value();
        assert_eq!(
            s.set(&v),
            format!("SID={v}; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Strict")
        );
    }

    #[test]
    fn httponly_is_always_there_and_expiry_clears() {
        let s = CookieSettings::default();
        assert!(s.set(&value()).contains("; HttpOnly"));
        let e = s.expire();
        assert!(e.starts_with("SESSIONID=; Path=/; Max-Age=0"), "{e}");
        assert!(e.contains("HttpOnly") && e.ends_with("SameSite=Lax"));
    }

    #[test]
    fn finds_ours_among_others_and_skips_garbage() {
        let s = CookieSettings::default();
        let v = value();
        let mut h = HeaderMap::new();
        h.append(COOKIE, "a=1; SESSIONID=garbage".parse().unwrap());
        h.append(COOKIE, format!("b=2; SESSIONID={v}; c=3").parse().unwrap());
        assert_eq!(s.find(&h), Some(v));
        let mut none = HeaderMap::new();
        none.append(COOKIE, "SESSIONIDX=1; x=SESSIONID".parse().unwrap());
        assert_eq!(s.find(&none), None);
    }
}
