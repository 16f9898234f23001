//! Loopback mode: everything on 127.0.0.1, no root needed.
//!
//! ```text
//!   you ── :8000 ── stackd proxy ──┬── stackd demo-backend 137server1 ──┐
//!                   (round robin)  └── stackd demo-backend 139server2 ──┴── redis-server
//!   status page :8001 (this process) polls all of them every second
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use stackd_common::CancellationToken;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::backends::Backends;
use crate::history::{now_ms, Series};
use crate::notify::Notify;
use crate::page::{self, Snapshot};
use crate::probe::{self, HttpClient};
use crate::procs::{Procs, GRACE};
use crate::proxy_toml::proxy_table;
use crate::{redis, LabError, LabOptions};
use stackd_testkit::until_ok;

const NODES: [&str; 2] = ["137server1", "139server2"];

/// Addresses of one running loopback stack.
struct Stack {
    dir: PathBuf,
    proxy: SocketAddr,
    proxy_admin: SocketAddr,
    status: SocketAddr,
    backends: Vec<(String, SocketAddr)>,
}

pub async fn run(opts: &LabOptions, shutdown: CancellationToken) -> Result<(), LabError> {
    let dir = std::env::temp_dir().join(format!("stackd-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    let mut procs = Procs::default();
    let mut backends = Backends::in_memory();
    let result = run_with(opts, &dir, &mut procs, &mut backends, shutdown).await;
    backends.stop_in_process();
    procs.stop_all(GRACE).await;
    println!(
        "stackd lab stopped everything it started; logs are in {}",
        dir.display()
    );
    result
}

async fn run_with(
    opts: &LabOptions,
    dir: &Path,
    procs: &mut Procs,
    backends: &mut Backends,
    shutdown: CancellationToken,
) -> Result<(), LabError> {
    let proxy_listener = bind(opts.port).await?;
    let status_listener = bind(opts.status_port).await?;
    let stack = Stack {
        dir: dir.to_owned(),
        proxy: local_addr(&proxy_listener)?,
        proxy_admin: free_addr()?,
        status: local_addr(&status_listener)?,
        backends: NODES
            .iter()
            .map(|n| Ok(((*n).to_owned(), free_addr()?)))
            .collect::<Result<_, LabError>>()?,
    };
    match redis::find_redis_server() {
        Some(server) => *backends = Backends::processes(&opts.exe, redis::start(&server, procs, dir).await?),
        None => println!(
            "lab: NOTICE: redis-server is not on PATH, so both backends run inside this process and share an \
             in-memory session store. Install redis-server (apt-get install redis-server) to see sessions \
             shared through Redis as in production."
        ),
    }
    for (node, addr) in &stack.backends {
        backends.start(procs, dir, node, *addr).await?;
    }
    let proxy_cfg = write_proxy_config(&stack)?;
    drop(proxy_listener); // the proxy binds it now
    let notify = Notify::bind(dir.join("notify.sock"))
        .map_err(|e| LabError::io("bind the proxy's NOTIFY_SOCKET", e))?;
    crate::notify::become_subreaper()?;
    let mut cmd = Command::new(&opts.exe);
    cmd.arg("proxy").arg("--config").arg(&proxy_cfg);
    cmd.env("NOTIFY_SOCKET", notify.path());
    procs.spawn("proxy", cmd, dir)?;

    let client = probe::http_client();
    wait_ready(&client, &stack).await?;
    let snapshot = Snapshot::default();
    tokio::spawn(page::admin(snapshot.clone()).serve(status_listener, shutdown.child_token()));
    print_banner(&stack, procs, backends);
    supervise(
        procs, backends, &stack, &client, &snapshot, &notify, shutdown,
    )
    .await
}

async fn bind(port: u16) -> Result<TcpListener, LabError> {
    TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        LabError::io(
            format!("listen on 127.0.0.1:{port} (is another lab or server using it? try --port 0)"),
            e,
        )
    })
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr, LabError> {
    l.local_addr().map_err(|e| LabError::io("local address", e))
}

fn free_addr() -> Result<SocketAddr, LabError> {
    stackd_testkit::net::try_free_addr().map_err(|e| LabError::io("find a free port", e))
}

/// The proxy's config: round robin over both backends, active health checks
/// every 500 ms so a stopped backend leaves the rotation within a second.
fn write_proxy_config(s: &Stack) -> Result<PathBuf, LabError> {
    let servers: Vec<(String, String)> = s
        .backends
        .iter()
        .map(|(node, addr)| (addr.to_string(), node.clone()))
        .collect();
    let text = format!(
        "# Written by stackd lab.\n{}",
        proxy_table(&s.proxy.to_string(), &s.proxy_admin.to_string(), &servers)
    );
    let path = s.dir.join("proxy.toml");
    stackd_common::Config::from_toml_str(&text, &path)
        .map_err(|e| LabError::Start(format!("internal: lab proxy config: {e}")))?;
    std::fs::write(&path, text)
        .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
    Ok(path)
}

async fn wait_ready(client: &HttpClient, s: &Stack) -> Result<(), LabError> {
    let within = Duration::from_secs(20);
    for (node, addr) in &s.backends {
        let url = format!("http://{addr}/healthz");
        until_ok(node, within, || ok_200(client, url.clone()))
            .await
            .map_err(|e| stuck(e, &s.dir))?;
    }
    let url = format!("http://{}/session", s.proxy);
    until_ok("proxy", within, || ok_200(client, url.clone()))
        .await
        .map(drop)
        .map_err(|e| stuck(e, &s.dir))
}

fn stuck(e: String, dir: &Path) -> LabError {
    LabError::Start(format!("{e}; see the logs in {}", dir.display()))
}

async fn ok_200(client: &HttpClient, url: String) -> Result<(), String> {
    match probe::get(client, &url, Duration::from_secs(1)).await? {
        (200, _) => Ok(()),
        (code, body) => Err(format!(
            "{url} answered {code}: {}",
            String::from_utf8_lossy(&body).trim()
        )),
    }
}

fn pid_of(procs: &Procs, name: &str) -> String {
    procs
        .get(name)
        .map_or_else(|| "-".to_owned(), |p| p.pid.to_string())
}

fn print_banner(s: &Stack, procs: &Procs, backends: &Backends) {
    println!("\nstackd lab is up on loopback. Ctrl-C stops everything it started.\n");
    println!(
        "  open     http://{}/          the demo app through the proxy",
        s.proxy
    );
    println!(
        "  status   http://{}/          live view: upstream health, request rate, Redis",
        s.status
    );
    println!(
        "  proxy    pid {:<7} admin http://{}/status",
        pid_of(procs, "proxy"),
        s.proxy_admin
    );
    for (node, addr) in &s.backends {
        println!(
            "  backend  pid {:<7} {node} on http://{addr}/",
            pid_of(procs, node)
        );
    }
    println!(
        "  sessions pid {:<7} {}",
        pid_of(procs, "redis"),
        backends.describe()
    );
    println!("  logs     {}\n", s.dir.display());
    for t in try_lines(s, procs) {
        println!("  try: {t}");
    }
    println!();
}

fn try_lines(s: &Stack, procs: &Procs) -> Vec<String> {
    let mut lines = vec![format!(
        "curl -s -c /tmp/lab.jar -b /tmp/lab.jar http://{}/session   (repeat: the node alternates, visits keep counting)",
        s.proxy
    )];
    if let Some(p) = procs.get(NODES[0]) {
        lines.push(format!(
            "kill {}   (stops backend {}: requests keep working, the session stays)",
            p.pid, NODES[0]
        ));
    }
    if let Some(p) = procs.get("proxy") {
        lines.push(format!(
            "kill -USR2 {}   (binary upgrade of the proxy: no request fails, the lab follows the new one)",
            p.pid
        ));
    }
    lines.push("type 1 or 2 and Enter here to stop or start a backend".into());
    lines
}

/// Runs until shutdown: refreshes the status page, reports processes that
/// died, follows the proxy through a binary upgrade (`notify`), and takes
/// `1`/`2` on stdin to stop or restart a backend.
async fn supervise(
    procs: &mut Procs,
    backends: &mut Backends,
    s: &Stack,
    client: &HttpClient,
    snapshot: &Snapshot,
    notify: &Notify,
    shutdown: CancellationToken,
) -> Result<(), LabError> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_total: Option<f64> = None;
    let mut series = Series::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(l)) => toggle_backend(procs, backends, s, l.trim()).await,
                _ => stdin_open = false,
            },
            _ = tick.tick() => {
                for pid in notify.main_pids() {
                    if let Some(old) = procs.adopt("proxy", pid) {
                        println!("lab: proxy upgraded (SIGUSR2): pid {old} handed over to pid {pid}");
                    }
                }
                for (name, status) in procs.reap_exited() {
                    println!("lab: {name} exited ({status})");
                }
                let mut view = collect(client, s, procs, backends, &mut last_total).await;
                series.push(now_ms(), view["proxy"]["servers"].as_array().map_or(&[][..], Vec::as_slice));
                view["series"] = series.to_json();
                snapshot.set(view);
            }
        }
    }
}

async fn toggle_backend(procs: &mut Procs, backends: &mut Backends, s: &Stack, cmd: &str) {
    let Some((node, addr)) = cmd
        .parse::<usize>()
        .ok()
        .and_then(|i| s.backends.get(i.wrapping_sub(1)))
    else {
        if !cmd.is_empty() {
            println!("lab: type 1 or 2 (backend number), or Ctrl-C to stop");
        }
        return;
    };
    if backends.running(procs, node) {
        backends.stop(procs, node).await;
        println!("lab: stopped {node}; requests go to the other backend, sessions stay");
    } else {
        match backends.start(procs, &s.dir, node, *addr).await {
            Ok(_) => println!("lab: started {node} again"),
            Err(e) => println!("lab: cannot start {node}: {e}"),
        }
    }
}

/// One snapshot for the status page.
async fn collect(
    client: &HttpClient,
    s: &Stack,
    procs: &mut Procs,
    backends: &Backends,
    last_total: &mut Option<f64>,
) -> Value {
    let t = Duration::from_millis(800);
    let mut rows = Vec::new();
    for (node, addr) in &s.backends {
        let (ok, detail) = match probe::get(client, &format!("http://{addr}/healthz"), t).await {
            Ok((200, _)) => (true, "200 OK".to_owned()),
            Ok((code, body)) => (
                false,
                format!("{code} {}", String::from_utf8_lossy(&body).trim()),
            ),
            Err(e) => (false, e),
        };
        let pid = procs
            .running(node)
            .then(|| procs.get(node).map(|p| p.pid))
            .flatten();
        rows.push(
            json!({"node": node, "addr": addr.to_string(), "pid": pid, "ok": ok, "detail": detail}),
        );
    }
    let status = probe::get(client, &format!("http://{}/status", s.proxy_admin), t).await;
    let status_json: Value = status
        .as_ref()
        .ok()
        .and_then(|(_, b)| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    let total = status.is_ok().then(|| page::requests_total(&status_json));
    let rps = page::per_second(total, *last_total);
    *last_total = total;
    let redis = match backends.redis() {
        Some(addr) => match probe::redis_ping(addr, t).await {
            Ok(()) => json!({"ok": true, "detail": format!("redis://{addr}/ answers PING")}),
            Err(e) => json!({"ok": false, "detail": e}),
        },
        None => json!({"ok": true, "detail": backends.describe()}),
    };
    json!({
        "mode": "loopback",
        "updated": clock_now(),
        "proxy": {"url": format!("http://{}/", s.proxy), "up": status.is_ok(), "rps": rps, "servers": servers_of(&status_json)},
        "backends": rows,
        "redis": redis,
        "vip": [],
        "try": try_lines(s, procs),
    })
}

/// Upstream servers from the proxy's `/status`, flattened for the page.
pub(crate) fn servers_of(status: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for up in status
        .get("upstreams")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = up.get("name").cloned().unwrap_or(Value::Null);
        for srv in up
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut row = srv.clone();
            if let Some(o) = row.as_object_mut() {
                o.insert("upstream".into(), name.clone());
            }
            out.push(row);
        }
    }
    out
}

/// Wall-clock time of day for the page (UTC, no date: it refreshes every second).
pub(crate) fn clock_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02} UTC",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}
