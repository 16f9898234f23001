//! The live page: one HTML page, read at a glance, served at `/` by every
//! admin listener and by `stackd lab`.
//!
//! It polls a JSON source every second and draws what it finds there:
//! - upstream servers (proxy `/status`, or the lab's proxy): a rolling
//!   two-minute chart of requests/s and errors/s per backend, and a table;
//! - VRRP instances (ha `/status`): a timeline of each instance's state; in
//!   the lab with namespaces, who held the VIP with every failover marked
//!   and the gap the client saw;
//! - the lab's backends, Redis and "try this" lines, in lab mode only.
//!
//! The lab keeps the history server-side (`series`, `timeline`) so a page
//! opened late shows the last minutes; on an admin listener the page keeps
//! it itself while it is open. No external scripts or fonts: the page works
//! on a host with no Internet, which is where admin listeners live.

/// Which page: an admin listener's, or the lab's (with its controls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Served at `/` of an admin listener; reads `/status`.
    Admin,
    /// Served by `stackd lab`; reads `/lab.json` and shows the lab's controls.
    Lab,
}

const PAGE: &str = include_str!("live.html");

/// The page's HTML for `mode`.
pub fn page(mode: Mode) -> String {
    match mode {
        Mode::Admin => PAGE.to_owned(),
        Mode::Lab => PAGE.replacen(
            r#"<body data-src="/status" data-mode="admin">"#,
            r#"<body data-src="/lab.json" data-mode="lab">"#,
            1,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_modes_read_their_source() {
        assert!(page(Mode::Admin).contains(r#"data-src="/status" data-mode="admin""#));
        let lab = page(Mode::Lab);
        assert!(lab.contains(r#"data-src="/lab.json" data-mode="lab""#));
        assert!(!lab.contains(r#"data-mode="admin""#));
        // Self-contained: nothing fetched from elsewhere.
        assert!(!lab.contains("http://") && !lab.contains("https://"));
    }
}
