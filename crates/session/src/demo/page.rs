//! The `/` page: what the seed's index.jsp showed, as one self-contained HTML
//! document (inline CSS and a few lines of script, no external assets), so a
//! person refreshing a browser sees the node change while the session stays.

use super::http_util::escape_html;
use super::routes::View;

pub(super) fn render(node: &str, v: &View) -> String {
    let node = escape_html(node);
    let sid = v
        .session_id
        .as_deref()
        .map(escape_html)
        .unwrap_or_else(|| "none".into());
    let user = match &v.user {
        Some(u) => format!("<b>{}</b>", escape_html(u)),
        None => "<i>not logged in</i>".into(),
    };
    let created = v
        .created_at
        .map(|c| c.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stackd demo · {node}</title>
<style>
 body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }}
 main {{ max-width: 34rem; margin: 3rem auto; background: #fff; border-radius: 10px; padding: 1.5rem 2rem; box-shadow: 0 1px 4px #0002; }}
 h1 {{ font-size: 1.3rem; margin: 0 0 1rem; }}
 .node {{ display: inline-block; background: #1d6fd8; color: #fff; border-radius: 6px; padding: 0 .5rem; font-family: ui-monospace, monospace; }}
 table {{ border-collapse: collapse; width: 100%; }}
 td {{ padding: .35rem 0; border-bottom: 1px solid #eee; }} td:first-child {{ color: #667; width: 9rem; }}
 code {{ font-size: .85rem; word-break: break-all; }}
 form {{ margin-top: 1rem; display: flex; gap: .5rem; }}
 input, button {{ font: inherit; padding: .3rem .6rem; }}
</style></head>
<body><main>
<h1>Served by node <span class="node">{node}</span></h1>
<table>
<tr><td>Session id</td><td><code>{sid}</code></td></tr>
<tr><td>Visits</td><td><b id="visits">{visits}</b></td></tr>
<tr><td>User</td><td>{user}</td></tr>
<tr><td>Created (unix)</td><td>{created}</td></tr>
<tr><td>Idle timeout</td><td>{ttl} s</td></tr>
</table>
<form id="login"><input name="user" placeholder="user name" required maxlength="64"><button>Log in</button></form>
<form id="logout"><button>Log out</button></form>
<p><small>Refresh to count a visit; behind the balancer the node may change, the session stays.</small></p>
</main>
<script>
for (const [id, path] of [["login", "/login"], ["logout", "/logout"]]) {{
  document.getElementById(id).addEventListener("submit", async (e) => {{
    e.preventDefault();
    await fetch(path, {{ method: "POST", body: new URLSearchParams(new FormData(e.target)) }});
    location.reload();
  }});
}}
</script>
</body></html>
"#,
        visits = v.visits,
        ttl = v.ttl_secs,
    )
}
