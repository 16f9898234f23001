//! The lab's live status page: which proxy holds the VIP, each upstream
//! server's health, the request rate and whether Redis answers, refreshing
//! itself every second. A poller task fills a JSON snapshot; the page is
//! static HTML that fetches `/lab.json`.

use std::sync::{Arc, RwLock};

use serde_json::Value;
use stackd_common::admin::{Admin, Page};

/// The latest snapshot, shared between the poller and the page handlers.
#[derive(Clone, Default)]
pub struct Snapshot(Arc<RwLock<Value>>);

impl Snapshot {
    pub fn set(&self, v: Value) {
        if let Ok(mut g) = self.0.write() {
            *g = v;
        }
    }

    pub fn get(&self) -> Value {
        self.0.read().map(|g| g.clone()).unwrap_or(Value::Null)
    }
}

/// Admin routes serving the page and its data.
pub fn admin(snapshot: Snapshot) -> Admin {
    let registry = Arc::new(prometheus_client::registry::Registry::default());
    let s = snapshot.clone();
    Admin::new(registry)
        .route("/", || Page::html(HTML))
        .route("/lab.json", move || Page::json(&s.get()))
        .status(move || snapshot.get())
}

/// Requests per second between two one-second samples of [`requests_total`];
/// 0 when either is missing or the counter went back (a proxy restart).
pub fn per_second(now: Option<f64>, before: Option<f64>) -> f64 {
    match (now, before) {
        (Some(n), Some(b)) if n >= b => n - b,
        _ => 0.0,
    }
}

/// Requests the proxy has handled so far, from its `/status`: the sum over
/// upstreams plus requests no route matched.
pub fn requests_total(status: &Value) -> f64 {
    let upstreams: f64 = status
        .get("upstreams")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|u| u.get("requests").and_then(Value::as_f64))
        .sum();
    upstreams
        + status
            .get("unrouted_requests")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
}

const HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stackd lab</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
 h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.5em}
 table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left}
 .up{color:#0a7d28;font-weight:600} .down{color:#b00020;font-weight:600} .muted{color:#777}
 code{background:#f4f4f4;padding:0 .3em}
</style></head><body>
<h1>stackd lab <span id="mode" class="muted"></span></h1>
<p class="muted">Refreshes every second. <span id="updated"></span></p>
<h2>Virtual IP</h2><div id="vip"></div>
<h2>Proxy</h2><div id="proxy"></div>
<h2>Backends</h2><div id="backends"></div>
<h2>Sessions (Redis)</h2><div id="redis"></div>
<h2>Try</h2><ul id="try"></ul>
<script>
const esc=s=>String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const ok=(b,t)=>`<span class="${b?'up':'down'}">${esc(t)}</span>`;
function table(rows,cols){return '<table><tr>'+cols.map(c=>`<th>${esc(c[0])}</th>`).join('')+'</tr>'+
 rows.map(r=>'<tr>'+cols.map(c=>`<td>${c[1](r)}</td>`).join('')+'</tr>').join('')+'</table>';}
async function tick(){
 try{
  const s=await (await fetch('/lab.json',{cache:'no-store'})).json();
  document.getElementById('mode').textContent='('+(s.mode||'')+')';
  document.getElementById('updated').textContent='Last update '+(s.updated||'');
  const vip=s.vip||[];
  document.getElementById('vip').innerHTML=vip.length?table(vip,[['host',r=>esc(r.host)],['state',r=>ok(r.state==='MASTER',r.state||'unknown')],['priority',r=>esc(r.priority??'')],['detail',r=>esc(r.detail||'')]]):'<span class="muted">loopback mode has no VIP; run <code>stackd lab --netns</code></span>';
  const p=s.proxy||{};
  document.getElementById('proxy').innerHTML=`${ok(p.up,p.up?'up':'down')} <a href="${esc(p.url||'')}">${esc(p.url||'')}</a> &middot; ${esc((p.rps||0).toFixed(1))} requests/s`+
   (p.servers&&p.servers.length?table(p.servers,[['upstream',r=>esc(r.upstream||'')],['server',r=>esc(r.addr||'')],['health',r=>ok(r.up,r.up?'up':'down')],['active',r=>esc(r.active_connections??'')],['requests',r=>esc(r.requests??'')],['failures',r=>esc(r.failures??'')]]):'');
  document.getElementById('backends').innerHTML=table(s.backends||[],[['node',r=>esc(r.node)],['address',r=>esc(r.addr)],['pid',r=>esc(r.pid??'')],['healthz',r=>ok(r.ok,r.detail)]]);
  const rd=s.redis||{};
  document.getElementById('redis').innerHTML=`${ok(rd.ok,rd.ok?'reachable':'unreachable')} ${esc(rd.detail||'')}`;
  document.getElementById('try').innerHTML=(s.try||[]).map(t=>`<li><code>${esc(t)}</code></li>`).join('');
 }catch(e){document.getElementById('updated').textContent='lab not answering: '+e;}
}
tick();setInterval(tick,1000);
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_requests_from_status() {
        let st = serde_json::json!({"upstreams": [{"requests": 3}, {"requests": 2}], "unrouted_requests": 1});
        assert_eq!(requests_total(&st), 6.0);
        assert_eq!(requests_total(&Value::Null), 0.0);
    }

    #[test]
    fn page_and_data_are_served() {
        let snap = Snapshot::default();
        snap.set(serde_json::json!({"mode": "loopback"}));
        let a = admin(snap);
        let page = a.handle(&http::Method::GET, "/");
        assert!(std::str::from_utf8(&page.body)
            .unwrap()
            .contains("stackd lab"));
        let data = a.handle(&http::Method::GET, "/lab.json");
        assert!(std::str::from_utf8(&data.body)
            .unwrap()
            .contains("loopback"));
    }
}
