//! `sticky`: route on the node suffix of the session cookie.
//!
//! The demo backend (like Tomcat with `jvmRoute`) names sessions
//! `<id>.<node_id>`. The proxy reads that suffix and sends the request to the
//! server with that `node_id` while it is usable; otherwise the caller falls
//! back to round robin. Sessions live in Redis, so the fallback loses nothing.

use super::Candidates;

/// Index of the usable server whose node id is `node`.
pub(crate) fn pick<C: Candidates + ?Sized>(c: &C, node: &str) -> Option<usize> {
    (0..c.len()).find(|&i| c.usable(i) && c.node_id(i) == Some(node))
}

/// The `.<node>` suffix of cookie `name` in one `Cookie` header value
/// (RFC 6265 §4.2.1: `name=value` pairs separated by `; `).
/// `"a=1; SESSIONID=f00d.137server1"` gives `137server1`; `"SESSIONID=f00d"` nothing.
pub(crate) fn node_in_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        if k.trim() != name {
            return None;
        }
        let v = v.trim().trim_matches('"');
        let (_, node) = v.rsplit_once('.')?;
        (!node.is_empty()).then_some(node)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn finds_the_node_suffix() {
        assert_eq!(
            node_in_cookie("SESSIONID=abc.137server1", "SESSIONID"),
            Some("137server1")
        );
        assert_eq!(
            node_in_cookie("x=1;SESSIONID=\"abc.n2\" ; y=2", "SESSIONID"),
            Some("n2")
        );
        assert_eq!(node_in_cookie("SESSIONIDX=abc.n2", "SESSIONID"), None);
        assert_eq!(node_in_cookie("SESSIONID=abc.", "SESSIONID"), None);
        assert_eq!(node_in_cookie("garbage", "SESSIONID"), None);
        assert_eq!(node_in_cookie("", "SESSIONID"), None);
    }

    #[test]
    fn picks_only_a_usable_match() {
        let mut t = tier(&[1, 1]);
        t[0].node = Some("a");
        t[1].node = Some("b");
        assert_eq!(pick(&t, "b"), Some(1));
        assert_eq!(pick(&t, "c"), None);
        t[1].up = false;
        assert_eq!(pick(&t, "b"), None);
    }
}
