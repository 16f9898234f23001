//! The `[proxy]` table both lab modes give their proxies: round robin over
//! the demo backends with active health checks every 500 ms, so a stopped
//! backend leaves the rotation within a second, and passive health as nginx.

use std::fmt::Write as _;

/// `[proxy]` with one upstream "backends" over `(addr, node_id)` servers.
pub fn proxy_table(listen: &str, admin: &str, servers: &[(String, String)]) -> String {
    let mut list = String::new();
    for (addr, node) in servers {
        let _ = writeln!(list, "  {{ addr = \"{addr}\", node_id = \"{node}\" }},");
    }
    format!(
        r#"[proxy]
listen = ["{listen}"]
admin = "{admin}"

[[proxy.upstream]]
name = "backends"
balance = "round_robin"
servers = [
{list}]
max_fails = 1
fail_timeout = "5s"
health = {{ path = "/healthz", interval = "500ms", timeout = "500ms", fall = 1, rise = 2 }}

[[proxy.route]]
path = "/"
upstream = "backends"
"#
    )
}
