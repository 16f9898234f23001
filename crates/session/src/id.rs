//! Session ids and the cookie value that carries them.
//!
//! An id is 128 bits from the thread-local CSPRNG (ChaCha, seeded from the OS),
//! written as 22 URL-safe base64 characters. The cookie value may add
//! `.<node>` (like Tomcat's `jvmRoute`) so a balancer can route sticky without
//! asking Redis; the suffix is routing metadata only and never part of the
//! Redis key, so any node finds the session whatever the suffix says.
//!
//! Parsing is strict: a value that is not exactly our shape is treated as "no
//! session", which also means a client can never pick its own id.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;

/// Bytes of randomness in an id (128 bits, the floor SPEC asks for).
const ID_BYTES: usize = 16;
/// Length of the base64url text of the 16 id bytes, without padding.
pub const ID_LEN: usize = 22;

/// A session id: the Redis key suffix. Only [`SessionId::generate`] and
/// [`SessionId::parse`] make one, so every value is well-formed.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

/// What a session cookie carries: the id and, optionally, the node that set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieValue {
    pub id: SessionId,
    pub node: Option<String>,
}

// === impl SessionId ===

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> SessionId {
        let mut bytes = [0u8; ID_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        SessionId(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly 22 base64url characters that decode to 16 bytes.
    pub fn parse(s: &str) -> Option<SessionId> {
        if s.len() != ID_LEN {
            return None;
        }
        match URL_SAFE_NO_PAD.decode(s) {
            Ok(b) if b.len() == ID_BYTES => Some(SessionId(s.to_owned())),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Ids are bearer secrets: Debug shows only a prefix so logs do not leak them.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.0[..6])
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl CookieValue ===

impl CookieValue {
    /// `<id>` or `<id>.<node>`; anything else is `None`.
    pub fn parse(s: &str) -> Option<CookieValue> {
        let (id, node) = match s.split_once('.') {
            Some((id, node)) if is_node_id(node) => (id, Some(node.to_owned())),
            Some(_) => return None,
            None => (s, None),
        };
        Some(CookieValue {
            id: SessionId::parse(id)?,
            node,
        })
    }
}

impl fmt::Display for CookieValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) => write!(f, "{}.{n}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// The node id alphabet `[demo_backend] node_id` validation enforces.
pub fn is_node_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), ID_LEN);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn cookie_value_round_trips_with_and_without_node() {
        let id = SessionId::generate();
        for node in [None, Some("137server1".to_owned())] {
            let v = CookieValue {
                id: id.clone(),
                node,
            };
            assert_eq!(CookieValue::parse(&v.to_string()), Some(v));
        }
    }

    #[test]
    fn malformed_values_are_no_session() {
        let id = SessionId::generate();
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAA+",
            &format!("{id}."),
            &format!("{id}.a.b"),
            &format!("{id}.no spaces"),
            &format!("{id}x"),
            "AAAAAAAAAAAAAAAAAAAAAB", // 22 chars but trailing bits set: not canonical
        ] {
            assert_eq!(CookieValue::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_does_not_print_the_whole_id() {
        let id = SessionId::generate();
        assert!(!format!("{id:?}").contains(id.as_str()));
    }
}
