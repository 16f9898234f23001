//! `stackd lab --netns` (root): the five hosts of SPEC.md in network
//! namespaces, with VRRP failover between the two proxies. It prints how to
//! reach the VIP from the client host and how to make things fail, serves the
//! live status page on loopback, and removes every namespace and process it
//! made when it stops (and those a crashed earlier run left behind).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use stackd_common::CancellationToken;
use stackd_testkit::netns::STANDARD_VIP;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

use crate::client_probe;
use crate::five_hosts::{addr_of, FiveHosts, Settings, COMPONENTS};
use crate::history::{now_ms, Series, Timeline};
use crate::local::{clock_now, servers_of};
use crate::page::{self, Snapshot};
use crate::{LabError, LabOptions};

type Shared = Arc<Mutex<FiveHosts>>;

fn lock(s: &Shared) -> MutexGuard<'_, FiveHosts> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

pub async fn run(opts: &LabOptions, shutdown: CancellationToken) -> Result<(), LabError> {
    let status_listener = TcpListener::bind(("127.0.0.1", opts.status_port))
        .await
        .map_err(|e| {
            LabError::io(
                format!(
                    "listen on 127.0.0.1:{} for the status page",
                    opts.status_port
                ),
                e,
            )
        })?;
    let status_addr = status_listener
        .local_addr()
        .map_err(|e| LabError::io("local address", e))?;
    crate::notify::become_subreaper()?;
    println!("lab: building the five hosts in network namespaces...");
    let exe = opts.exe.clone();
    let stack = blocking(move || {
        let s = FiveHosts::start(&exe, "stackdlab", &Settings::default()).map_err(|e| {
            LabError::Start(format!("cannot build the namespaces (are you root?): {e}"))
        })?;
        s.wait_serving(Duration::from_secs(30))
            .map_err(|e| LabError::Start(e.to_string()))?;
        Ok(s)
    })
    .await?;
    let stack: Shared = Arc::new(Mutex::new(stack));
    let snapshot = Snapshot::default();
    tokio::spawn(page::admin(snapshot.clone()).serve(status_listener, shutdown.child_token()));
    print_banner(&lock(&stack), status_addr);

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_total: Option<f64> = None;
    let (series, timeline) = (&mut Series::default(), &mut Timeline::default());
    let stop_probe = Arc::new(AtomicBool::new(false));
    let (probe_tx, probe_rx) = std::sync::mpsc::channel();
    let vip = SocketAddr::from((
        STANDARD_VIP
            .parse::<std::net::Ipv4Addr>()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        80,
    ));
    let prober = client_probe::spawn(&lock(&stack).ns("cl"), vip, stop_probe.clone(), probe_tx)
        .map_err(|e| LabError::io("start the client probe", e))?;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(l)) => toggle(&stack, l.trim().to_owned()).await,
                _ => stdin_open = false,
            },
            _ = tick.tick() => {
                let s = stack.clone();
                let prev = last_total;
                let seen = blocking(move || {
                    let mut g = lock(&s);
                    let upgrades = g.follow_upgrades();
                    Ok((collect(&g, prev), upgrades))
                })
                .await;
                if let Ok(((mut view, total, holder), upgrades)) = seen {
                    for (name, old, new) in upgrades {
                        println!("lab: {name} upgraded (SIGUSR2): pid {old} handed over to pid {new}");
                    }
                    last_total = total;
                    let now = now_ms();
                    for (at, ok) in probe_rx.try_iter() {
                        timeline.probe(at, ok);
                    }
                    timeline.holder(now, holder);
                    series.push(now, view["proxy"]["both"].as_array().map_or(&[][..], Vec::as_slice));
                    view["series"] = series.to_json();
                    view["timeline"] = timeline.to_json(now);
                    snapshot.set(view);
                }
            }
        }
    }
    stop_probe.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || prober.join()).await;
    let dir = lock(&stack).dir().display().to_string();
    blocking(move || {
        drop(stack);
        Ok(())
    })
    .await?;
    println!(
        "stackd lab stopped every process and removed every namespace it made (logs were in {dir})"
    );
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LabError> + Send + 'static,
) -> Result<T, LabError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LabError::Start(format!("internal: lab task failed: {e}")))?
}

fn print_banner(s: &FiveHosts, status: std::net::SocketAddr) {
    let cl = s.ns("cl");
    println!("\nstackd lab is up in network namespaces. Ctrl-C stops everything and removes the namespaces.\n");
    println!("  status   http://{status}/          live view: who holds the VIP, upstream health, request rate, Redis");
    println!("  client   ip netns exec {cl} curl -s -c /tmp/lab.jar -b /tmp/lab.jar http://{STANDARD_VIP}/session");
    println!();
    for name in COMPONENTS {
        let host = name.split('-').next().unwrap_or(name);
        let host = if host == "redis" { "rd" } else { host };
        let pid = s.pid(name).map_or_else(|| "-".into(), |p| p.to_string());
        println!(
            "  {name:<10} pid {pid:<7} on {host} ({}, namespace {})",
            addr_of(host),
            s.ns(host)
        );
    }
    println!("  logs     {}\n", s.dir().display());
    println!(
        "  try: kill {}    (stop ha on px1: priority 0, px2 takes the VIP within ~100 ms)",
        pid(s, "px1-ha")
    );
    println!(
        "  try: kill -9 {} (kill the proxy on px1: its health track fails, px2 takes the VIP)",
        pid(s, "px1-proxy")
    );
    println!(
        "  try: kill -USR2 {} (binary upgrade of the proxy on px1: no request fails, the lab follows the new one)",
        pid(s, "px1-proxy")
    );
    println!(
        "  try: type a name ({}) and Enter to stop it, again to start it",
        COMPONENTS.join(", ")
    );
    println!(
        "  try: ip netns exec {} ip addr show dev eth0   (see the VIP on the MASTER)\n",
        s.ns("px1")
    );
}

fn pid(s: &FiveHosts, name: &str) -> String {
    s.pid(name).map_or_else(|| "-".into(), |p| p.to_string())
}

async fn toggle(stack: &Shared, name: String) {
    if name.is_empty() {
        return;
    }
    if !COMPONENTS.contains(&name.as_str()) {
        println!(
            "lab: unknown name {name:?}; one of {}",
            COMPONENTS.join(", ")
        );
        return;
    }
    let s = stack.clone();
    let msg = blocking(move || {
        let mut g = lock(&s);
        Ok(if g.running(&name) {
            match g.stop_component(&name, "TERM") {
                Ok(()) => format!("lab: stopped {name}"),
                Err(e) => format!("lab: cannot stop {name}: {e}"),
            }
        } else {
            match g.start_component(&name) {
                Ok(pid) => format!("lab: started {name} (pid {pid})"),
                Err(e) => format!("lab: cannot start {name}: {e}"),
            }
        })
    })
    .await
    .unwrap_or_else(|e| e.to_string());
    println!("{msg}");
}

/// One snapshot for the status page, gathered from the client host, with
/// the proxy's request total and who holds the VIP.
fn collect(s: &FiveHosts, last_total: Option<f64>) -> (Value, Option<f64>, Option<&'static str>) {
    let mut vip = Vec::new();
    let mut proxy_status = Value::Null;
    // Who serves the VIP: the host that has it, or, while a planned
    // hand-over keeps it on both for a second, the one that is MASTER.
    let mut holders: Vec<(&'static str, bool)> = Vec::new();
    // Both proxies' counters: the chart shows what each backend served,
    // whichever proxy held the VIP.
    let mut every_proxy = Vec::new();
    for host in ["px1", "px2"] {
        let status: Value = s
            .admin(host, ":9091/status")
            .ok()
            .and_then(|r| serde_json::from_str(&r.body).ok())
            .unwrap_or(Value::Null);
        let inst = status["instances"].get(0).cloned().unwrap_or(Value::Null);
        let state = inst["state"]
            .as_str()
            .unwrap_or(if s.running(&format!("{host}-ha")) {
                "unknown"
            } else {
                "stopped"
            });
        if s.has_vip(host) {
            holders.push((host, state == "MASTER"));
        }
        vip.push(json!({
            "host": format!("{host} {}", addr_of(host)),
            "state": state,
            "priority": inst["effective_priority"].clone(),
            "detail": if s.has_vip(host) { format!("holds {STANDARD_VIP}") } else { String::new() },
        }));
        let status: Value = s
            .admin(host, ":9090/status")
            .ok()
            .and_then(|r| serde_json::from_str(&r.body).ok())
            .unwrap_or(Value::Null);
        every_proxy.extend(servers_of(&status));
        if s.has_vip(host) {
            proxy_status = status;
        }
    }
    let total = (!proxy_status.is_null()).then(|| page::requests_total(&proxy_status));
    let rps = page::per_second(total, last_total);
    let backends: Vec<Value> = [("be1", "137server1"), ("be2", "139server2")]
        .iter()
        .map(|(host, node)| {
            let r = s.request("GET", &format!("http://{}:8080/healthz", addr_of(host)), None, None, &[]);
            let (ok, detail) = match r {
                Ok(r) if r.status == 200 => (true, "200 OK".to_owned()),
                Ok(r) => (false, format!("{} {}", r.status, r.body.trim())),
                Err(e) => (false, e.to_string()),
            };
            json!({"node": node, "addr": format!("{}:8080", addr_of(host)), "pid": s.pid(host), "ok": ok, "detail": detail})
        })
        .collect();
    let redis_ok = s.redis_ping();
    let cl = s.ns("cl");
    let view = json!({
        "mode": "network namespaces",
        "updated": clock_now(),
        "vip": vip,
        "proxy": {"url": format!("http://{STANDARD_VIP}/ (from namespace {cl})"), "up": !proxy_status.is_null(), "rps": rps, "servers": servers_of(&proxy_status), "both": page::sum_servers(&every_proxy)},
        "backends": backends,
        "redis": {"ok": redis_ok, "detail": if redis_ok { "redis://192.0.2.140:6379/ answers PING" } else { "redis://192.0.2.140:6379/ does not answer" }},
        "try": [
            format!("ip netns exec {cl} curl -s http://{STANDARD_VIP}/session"),
            format!("kill {}   (ha on px1: planned switchover)", pid(s, "px1-ha")),
            format!("kill -9 {}   (proxy on px1: tracked check fails)", pid(s, "px1-proxy")),
            format!("kill -USR2 {}   (proxy on px1: binary upgrade, no request fails)", pid(s, "px1-proxy")),
        ],
    });
    (view, total, vip_holder(&holders))
}

/// The host serving the VIP, from (host that has it, its ha says MASTER).
fn vip_holder(holders: &[(&'static str, bool)]) -> Option<&'static str> {
    match holders {
        [(one, _)] => Some(one),
        both => both.iter().find(|(_, master)| *master).map(|(h, _)| *h),
    }
}
