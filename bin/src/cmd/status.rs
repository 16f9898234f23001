//! `stackd status`: the host at a glance, from the admin listeners its file
//! names; exit 1 when something is down, so scripts and monitoring can use it.
//!
//! Fetching is the only I/O; [`assess`] and [`render`] are plain functions of
//! what was fetched, tested on fixed answers.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use stackd_common::{Config, ConfigError};

use crate::admin_client;
use crate::cli::StatusArgs;

const WITHIN: Duration = Duration::from_secs(3);

/// One admin page as fetched: its JSON, or why there is none.
#[derive(Debug)]
pub struct Probe {
    pub addr: SocketAddr,
    pub answer: Result<(u16, String), String>,
}

impl Probe {
    fn json(&self) -> Option<Value> {
        match &self.answer {
            Ok((200, body)) => serde_json::from_str(body).ok(),
            _ => None,
        }
    }

    fn unreachable(&self) -> Option<String> {
        match &self.answer {
            Err(e) => Some(e.clone()),
            Ok((code, body)) if *code != 200 && *code != 503 => {
                Some(format!("answered {code}: {}", body.trim()))
            }
            _ => None,
        }
    }
}

/// Everything `stackd status` fetched for one host.
#[derive(Debug)]
pub struct View {
    pub file: PathBuf,
    /// `[ha] admin` `/status`.
    pub ha: Option<Probe>,
    /// `[proxy] admin` `/status`.
    pub proxy: Option<Probe>,
    /// `[demo_backend] listen` `/healthz`: 200 when the session store answers.
    pub sessions: Option<Probe>,
}

pub async fn run(a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(&a.config)?;
    let view = fetch(&a.config, &cfg).await?;
    let problems = assess(&view);
    if a.json {
        println!("{:#}", to_json(&view, &problems));
    } else {
        print!("{}", render(&view, &problems));
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn fetch(path: &Path, cfg: &Config) -> Result<View, ConfigError> {
    let ha = cfg.ha.as_ref().and_then(|h| h.admin);
    let proxy = cfg.proxy.as_ref().and_then(|p| p.admin);
    let sessions = cfg.demo_backend.as_ref().map(|d| d.listen);
    if ha.is_none() && proxy.is_none() && sessions.is_none() {
        return Err(super::no_admin(path, "[proxy] or [ha]"));
    }
    let probe = |addr: SocketAddr, page: &'static str| async move {
        let answer = admin_client::get(addr, page, WITHIN)
            .await
            .map(|a| (a.status, a.body));
        Probe { addr, answer }
    };
    let (ha, proxy, sessions) = tokio::join!(
        async {
            match ha {
                Some(a) => Some(probe(a, "/status").await),
                None => None,
            }
        },
        async {
            match proxy {
                Some(a) => Some(probe(a, "/status").await),
                None => None,
            }
        },
        async {
            match sessions {
                Some(a) => Some(probe(a, "/healthz").await),
                None => None,
            }
        },
    );
    Ok(View {
        file: path.to_owned(),
        ha,
        proxy,
        sessions,
    })
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// What is down, one sentence each; empty when all is well.
pub fn assess(v: &View) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = &v.ha {
        if let Some(e) = p.unreachable() {
            out.push(format!("ha admin {} does not answer: {e}", p.addr));
        }
        for i in p.json().map(|j| list(&j, "instances")).unwrap_or_default() {
            let name = s(&i, "name");
            match s(&i, "state") {
                "MASTER" | "BACKUP" => {}
                st => out.push(format!("instance {name} is {st}")),
            }
            for t in list(&i, "tracks") {
                if s(&t, "health") == "down" {
                    out.push(format!("instance {name}: track {} is down", s(&t, "check")));
                }
            }
        }
    }
    if let Some(p) = &v.proxy {
        if let Some(e) = p.unreachable() {
            out.push(format!("proxy admin {} does not answer: {e}", p.addr));
        }
        for u in p.json().map(|j| list(&j, "upstreams")).unwrap_or_default() {
            let servers = list(&u, "servers");
            let up = servers.iter().filter(|sv| sv["up"] == true).count();
            for sv in &servers {
                if sv["up"] != true && !maintenance(sv) {
                    out.push(format!(
                        "upstream {}: server {} is down{}",
                        s(&u, "name"),
                        s(sv, "addr"),
                        last_failure(sv)
                    ));
                }
            }
            if up == 0 && !servers.is_empty() {
                out.push(format!("upstream {}: no server is up", s(&u, "name")));
            }
        }
    }
    if let Some(p) = &v.sessions {
        match &p.answer {
            Ok((200, _)) => {}
            Ok((code, body)) => out.push(format!(
                "session store: the demo backend on {} answers {code}: {}",
                p.addr,
                body.trim()
            )),
            Err(e) => out.push(format!("demo backend {} does not answer: {e}", p.addr)),
        }
    }
    out
}

/// Why a server last failed, as `/status` keeps it: `": last failed <by>: <error>"`,
/// or nothing when the proxy has no failure on record.
fn last_failure(sv: &Value) -> String {
    let f = &sv["last_failure"];
    match (f["by"].as_str(), f["error"].as_str()) {
        (Some(by), Some(error)) => format!(": last failed {by}: {error}"),
        _ => String::new(),
    }
}

/// A server an operator took out on purpose (`stackd ctl`) is not "down".
fn maintenance(sv: &Value) -> bool {
    matches!(s(sv, "admin_state"), "drain" | "disable")
}

/// The text picture.
pub fn render(v: &View, problems: &[String]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "stackd status: {}", v.file.display());
    if let Some(p) = &v.ha {
        let _ = writeln!(o, "\nha (admin {})", p.addr);
        for i in p.json().map(|j| list(&j, "instances")).unwrap_or_default() {
            render_instance(&mut o, &i);
        }
    }
    if let Some(p) = &v.proxy {
        let _ = writeln!(o, "\nproxy (admin {})", p.addr);
        for u in p.json().map(|j| list(&j, "upstreams")).unwrap_or_default() {
            let _ = writeln!(o, "  upstream {} ({})", s(&u, "name"), s(&u, "balance"));
            for sv in list(&u, "servers") {
                let health = if sv["up"] == true { "up" } else { "DOWN" };
                let admin = match s(&sv, "admin_state") {
                    "" | "enable" => String::new(),
                    st => format!("  [{st}]"),
                };
                let _ = writeln!(
                    o,
                    "    {:<22} {:<5} active {:<4} requests {:<8} failures {}{admin}",
                    s(&sv, "addr"),
                    health,
                    sv["active_connections"].to_string(),
                    sv["requests"].to_string(),
                    sv["failures"],
                );
            }
        }
    }
    if let Some(p) = &v.sessions {
        let line = match &p.answer {
            Ok((200, _)) => "reachable".to_owned(),
            Ok((code, body)) => format!("UNREACHABLE ({code} {})", body.trim()),
            Err(e) => format!("backend not answering ({e})"),
        };
        let _ = writeln!(o, "\nsessions (demo backend {}): {line}", p.addr);
    }
    if problems.is_empty() {
        let _ = writeln!(o, "\nall up");
    } else {
        let _ = writeln!(o, "\n{} problem(s):", problems.len());
        for p in problems {
            let _ = writeln!(o, "  - {p}");
        }
    }
    o
}

fn render_instance(o: &mut String, i: &Value) {
    let vips: Vec<&str> = i["vips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let holder = match (s(i, "state"), i["master"].as_str()) {
        ("MASTER", _) => format!("this host holds {}", vips.join(", ")),
        ("BACKUP", Some(m)) => format!("VIP held by {m}"),
        ("BACKUP", None) => "VIP held by the peer (not heard yet)".to_owned(),
        _ => "this host does not hold the VIP".to_owned(),
    };
    let _ = writeln!(
        o,
        "  {} {} on {} (VRID {}): priority {} (configured {}); {holder}",
        s(i, "name"),
        s(i, "state"),
        s(i, "interface"),
        i["vrid"],
        i["effective_priority"],
        i["priority"],
    );
    for t in list(i, "tracks") {
        let weight = t["weight"].as_u64().unwrap_or(0);
        let effect = if weight == 0 {
            "FAULT when down".to_owned()
        } else {
            format!("-{weight} when down")
        };
        let _ = writeln!(
            o,
            "    track {}: {} ({effect})",
            s(&t, "check"),
            s(&t, "health")
        );
    }
}

/// `--json`: what was fetched, as fetched, plus the verdict.
pub fn to_json(v: &View, problems: &[String]) -> Value {
    let probe = |p: &Option<Probe>| {
        p.as_ref().map(|p| match &p.answer {
            Ok((code, body)) => json!({
                "admin": p.addr.to_string(),
                "http_status": code,
                "status": serde_json::from_str::<Value>(body).unwrap_or_else(|_| Value::String(body.trim().to_owned())),
            }),
            Err(e) => json!({"admin": p.addr.to_string(), "error": e}),
        })
    };
    json!({
        "config": v.file.display().to_string(),
        "ok": problems.is_empty(),
        "problems": problems,
        "ha": probe(&v.ha),
        "proxy": probe(&v.proxy),
        "sessions": probe(&v.sessions),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(addr: &str, code: u16, body: Value) -> Option<Probe> {
        Some(Probe {
            addr: addr.parse().unwrap(),
            answer: Ok((code, body.to_string())),
        })
    }

    fn view() -> View {
        View {
            file: "px1.toml".into(),
            ha: probe(
                "127.0.0.1:9091",
                200,
                json!({"instances": [{
                    "name": "VI_1", "state": "MASTER", "interface": "eth0", "vrid": 51,
                    "priority": 100, "effective_priority": 100, "master": "192.0.2.133",
                    "vips": ["192.0.2.88/24"],
                    "tracks": [{"check": "http://127.0.0.1:9090/healthz", "health": "up", "weight": 0}]
                }]}),
            ),
            proxy: probe(
                "127.0.0.1:9090",
                200,
                json!({"upstreams": [{
                "name": "tomcats", "balance": "round_robin", "servers": [
                    {"addr": "192.0.2.137:8080", "up": true, "active_connections": 1, "requests": 10, "failures": 0},
                    {"addr": "192.0.2.139:8080", "up": true, "active_connections": 0, "requests": 9, "failures": 0}
                ]}]}),
            ),
            sessions: None,
        }
    }

    #[test]
    fn all_up_is_quiet() {
        let v = view();
        assert!(assess(&v).is_empty(), "{:?}", assess(&v));
        let text = render(&v, &[]);
        assert!(text.contains("VI_1 MASTER on eth0 (VRID 51): priority 100 (configured 100); this host holds 192.0.2.88/24"), "{text}");
        assert!(
            text.contains("track http://127.0.0.1:9090/healthz: up (FAULT when down)"),
            "{text}"
        );
        assert!(text.contains("192.0.2.139:8080       up"), "{text}");
        assert!(text.ends_with("all up\n"), "{text}");
    }

    #[test]
    fn a_down_server_a_fault_and_a_dead_admin_are_problems() {
        let mut v = view();
        v.proxy = probe(
            "127.0.0.1:9090",
            200,
            json!({"upstreams": [{"name": "tomcats", "servers": [
            {"addr": "192.0.2.137:8080", "up": false, "last_failure":
                {"unix_ms": 1_764_000_000_000_u64, "by": "health check", "error": "GET /healthz answered 503 Service Unavailable"}},
            {"addr": "192.0.2.139:8080", "up": false, "admin_state": "drain"}]}]}),
        );
        v.ha = probe(
            "127.0.0.1:9091",
            200,
            json!({"instances": [{"name": "VI_1", "state": "FAULT",
            "tracks": [{"check": "http://127.0.0.1:9090/healthz", "health": "down", "weight": 0}]}]}),
        );
        v.sessions = Some(Probe {
            addr: "127.0.0.1:8080".parse().unwrap(),
            answer: Err("connection refused".into()),
        });
        let p = assess(&v);
        assert_eq!(
            p,
            [
                "instance VI_1 is FAULT",
                "instance VI_1: track http://127.0.0.1:9090/healthz is down",
                "upstream tomcats: server 192.0.2.137:8080 is down: last failed health check: GET /healthz answered 503 Service Unavailable",
                "upstream tomcats: no server is up",
                "demo backend 127.0.0.1:8080 does not answer: connection refused",
            ]
        );
        let text = render(&v, &p);
        assert!(text.contains("[drain]"), "{text}");
        assert!(text.contains("5 problem(s):"), "{text}");
        assert_eq!(to_json(&v, &p)["ok"], false);
    }
}
