//! The five-host stack of SPEC.md, built in network namespaces on one
//! bridge: two proxies sharing a VIP by VRRP, two demo backends, Redis, and
//! a client. `stackd lab --netns` runs it for people; the end-to-end tests
//! drive the same thing, so what the tests prove is what people see.
//!
//! ```text
//!                      cl 192.0.2.10
//!                           |  VIP 192.0.2.88 (VRRPv3, VRID 51)
//!        px1 .133 (proxy + ha, prio 100)   px2 .135 (proxy + ha, prio 99)
//!        be1 .137:8080 (137server1)        be2 .139:8080 (139server2)
//!                        rd .140:6379 (redis-server)
//! ```
//!
//! Everything here is blocking (std::process, `ip netns exec`): it runs at
//! human speed, and tests call it from plain threads.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use stackd_testkit::http::Reply;
use stackd_testkit::netns::{Lab, STANDARD_HOSTS, STANDARD_VIP};

use crate::notify::Notify;

/// Protocol settings of the lab's VRRP instance.
#[derive(Clone, Debug)]
pub struct Settings {
    /// 2 or 3.
    pub version: u8,
    /// `advert_int` as written in the config ("100ms", "1s").
    pub advert_int: &'static str,
    /// Interval of the tracked proxy health check ("100ms").
    pub track_interval: &'static str,
}

impl Default for Settings {
    /// VRRPv3 at 100 ms: failover in about 0.4 s, so people can watch it.
    fn default() -> Self {
        Settings {
            version: 3,
            advert_int: "100ms",
            track_interval: "100ms",
        }
    }
}

/// One process of the stack: which host runs it and how.
struct Component {
    name: String,
    host: &'static str,
    args: Vec<String>,
    pid: Option<u32>,
    /// A proxy's `NOTIFY_SOCKET`: on a binary upgrade (SIGUSR2) it names
    /// its successor there (`MAINPID=`), as it would to systemd.
    notify: Option<Notify>,
}

/// A running five-host stack; dropping it stops every process and removes
/// every namespace it made.
pub struct FiveHosts {
    lab: Lab,
    dir: PathBuf,
    components: Vec<Component>,
    /// Proxies that handed over to a successor, until they are reaped
    /// (they drain first).
    retired: Vec<u32>,
}

/// Names of the stack's processes, in start order.
pub const COMPONENTS: [&str; 7] = [
    "redis",
    "be1",
    "be2",
    "px1-proxy",
    "px2-proxy",
    "px1-ha",
    "px2-ha",
];

// === impl FiveHosts ===

impl FiveHosts {
    /// Builds the namespaces, writes the configs into a fresh directory and
    /// starts every component with `exe` (the stackd binary). `tag` is a short
    /// word that prefixes namespace names; stale ones from crashed runs go first.
    pub fn start(exe: &Path, tag: &str, settings: &Settings) -> io::Result<FiveHosts> {
        let removed = stackd_testkit::netns::cleanup_stale(tag)?;
        if !removed.is_empty() {
            tracing::info!(?removed, "removed namespaces left by a crashed run");
        }
        let lab = Lab::standard(tag)?;
        let dir = std::env::temp_dir().join(lab.prefix().trim_end_matches('-'));
        fs::create_dir_all(&dir)?;
        let exe = exe.display().to_string();
        let mut components = vec![Component {
            name: "redis".into(),
            host: "rd",
            args: [
                "redis-server",
                "--bind",
                "192.0.2.140",
                "--port",
                "6379",
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(String::from)
            .to_vec(),
            pid: None,
            notify: None,
        }];
        for (name, host, node) in [("be1", "be1", "137server1"), ("be2", "be2", "139server2")] {
            let addr = addr_of(host);
            components.push(Component {
                name: name.into(),
                host,
                args: vec![
                    exe.clone(),
                    "demo-backend".into(),
                    "--listen".into(),
                    format!("{addr}:8080"),
                    "--node-id".into(),
                    node.into(),
                    "--redis".into(),
                    "redis://192.0.2.140:6379/".into(),
                ],
                pid: None,
                notify: None,
            });
        }
        for (host, prio) in [("px1", 100), ("px2", 99)] {
            let cfg = dir.join(format!("{host}.toml"));
            fs::write(&cfg, proxy_host_config(prio, settings))?;
            let cfg = cfg.display().to_string();
            for role in ["proxy", "ha"] {
                let name = format!("{host}-{role}");
                let notify = (role == "proxy")
                    .then(|| Notify::bind(dir.join(format!("{name}.notify"))))
                    .transpose()?;
                components.push(Component {
                    name,
                    host,
                    args: vec![exe.clone(), role.into(), "--config".into(), cfg.clone()],
                    pid: None,
                    notify,
                });
            }
        }
        let mut stack = FiveHosts {
            lab,
            dir,
            components,
            retired: Vec::new(),
        };
        for name in COMPONENTS.iter().filter(|n| **n != "px2-ha") {
            stack.start_component(name)?;
        }
        // The standby's ha starts once the primary holds the VIP, as when
        // hosts boot at different times. Started in the same millisecond, the
        // two election timers (3 x 100 ms + skew) differ by 0.4 ms, both
        // become MASTER for an instant, and the client may keep the loser's
        // ARP entry until the next gratuitous ARP burst (5 s later).
        for _ in 0..100 {
            if stack.has_vip("px1") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stack.start_component("px2-ha")?;
        Ok(stack)
    }

    /// Waits until both proxies see both backends up and a client request
    /// through the VIP gets 200 (a backend that was not listening yet when a
    /// proxy started stays down until its health check rises).
    pub fn wait_serving(&self, within: Duration) -> io::Result<()> {
        let tries = within.as_millis() / 100;
        for _ in 0..=tries {
            let proxies_see_all = ["px1", "px2"].iter().all(|h| self.all_servers_up(h));
            if proxies_see_all && self.get("/healthz", None).is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the VIP did not serve within {within:?}; logs in {}",
                self.dir.display()
            ),
        ))
    }

    /// Starts (or restarts) component `name`; its output goes to `<dir>/<name>.log`.
    pub fn start_component(&mut self, name: &str) -> io::Result<u32> {
        let c = self.component(name)?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))?;
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let mut cmd = self.lab.command(c.host, &args);
        cmd.stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        if let Some(n) = &c.notify {
            cmd.env("NOTIFY_SOCKET", n.path());
        }
        let pid = self.lab.spawn(cmd)?;
        if let Some(c) = self.components.iter_mut().find(|c| c.name == name) {
            c.pid = Some(pid);
        }
        Ok(pid)
    }

    /// Sends `signal` ("TERM", "KILL") to `name` and waits up to 10 s for it to exit.
    pub fn stop_component(&mut self, name: &str, signal: &str) -> io::Result<()> {
        let pid = self.pid(name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{name} is not running"))
        })?;
        self.lab.signal(pid, signal)?;
        if !self.lab.wait_exit(pid, Duration::from_secs(10)) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{name} (pid {pid}) did not exit"),
            ));
        }
        if let Some(c) = self.components.iter_mut().find(|c| c.name == name) {
            c.pid = None;
        }
        Ok(())
    }

    /// Follows the proxies through binary upgrades (`kill -USR2`): a proxy
    /// that named its successor on its `NOTIFY_SOCKET` is that successor
    /// from now on, to [`FiveHosts::pid`], [`FiveHosts::running`] and
    /// [`FiveHosts::stop_component`]. Returns (name, old PID, new PID) for
    /// each hand-over seen since the last call. Reaps the old processes
    /// that have exited since.
    pub fn follow_upgrades(&mut self) -> Vec<(String, u32, u32)> {
        let lab = &self.lab;
        self.retired
            .retain(|&pid| !lab.wait_exit(pid, Duration::ZERO));
        let mut seen = Vec::new();
        for c in &mut self.components {
            let pids = c.notify.as_ref().map(Notify::main_pids).unwrap_or_default();
            for new in pids {
                let Some(old) = c.pid.filter(|&old| old != new) else {
                    continue;
                };
                self.lab.adopt(new);
                self.retired.push(old);
                c.pid = Some(new);
                seen.push((c.name.clone(), old, new));
            }
        }
        seen
    }

    /// PID of a running component.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.components.iter().find(|c| c.name == name)?.pid
    }

    /// Whether `name` is running (it may have exited by itself).
    pub fn running(&self, name: &str) -> bool {
        self.pid(name)
            .is_some_and(|pid| !self.lab.wait_exit(pid, Duration::ZERO))
    }

    /// Which proxy host has the VIP on eth0 now ("px1", "px2"), if exactly one does.
    pub fn vip_holder(&self) -> Option<&'static str> {
        let holders: Vec<&'static str> = ["px1", "px2"]
            .into_iter()
            .filter(|h| self.has_vip(h))
            .collect();
        match holders.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether `host` has the VIP on eth0 (a dead host may still have it configured).
    pub fn has_vip(&self, host: &str) -> bool {
        self.lab
            .exec(host, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{STANDARD_VIP}/")))
    }

    /// GET `path` through the VIP from the client host.
    pub fn get(&self, path: &str, cookie: Option<&str>) -> io::Result<Reply> {
        self.request(
            "GET",
            &format!("http://{STANDARD_VIP}{path}"),
            cookie,
            None,
            &[],
        )
    }

    /// One HTTP request from the client host (curl inside `cl`), at most 2 s.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        cookie: Option<&str>,
        json: Option<&str>,
        headers: &[&str],
    ) -> io::Result<Reply> {
        self.request_within(Duration::from_secs(2), method, url, cookie, json, headers)
    }

    /// [`FiveHosts::request`] with its own time limit.
    pub fn request_within(
        &self,
        limit: Duration,
        method: &str,
        url: &str,
        cookie: Option<&str>,
        json: Option<&str>,
        headers: &[&str],
    ) -> io::Result<Reply> {
        let max_time = format!("{:.3}", limit.as_secs_f64());
        let mut args = vec!["curl", "-s", "-i", "-m", &max_time, "-X", method];
        let cookie_header;
        if let Some(c) = cookie {
            cookie_header = format!("Cookie: {c}");
            args.extend(["-H", &cookie_header]);
        }
        if let Some(body) = json {
            args.extend([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ]);
        }
        for h in headers {
            args.extend(["-H", h]);
        }
        args.push(url);
        let out = self.lab.exec("cl", &args)?;
        if !out.status.success() {
            return Err(io::Error::other(format!("curl {url}: exit {}", out.status)));
        }
        Reply::from_text(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| io::Error::other(format!("curl {url}: no HTTP answer")))
    }

    /// GET an admin page of a host ("px1", ":9091/status") from the client host.
    pub fn admin(&self, host: &str, port_path: &str) -> io::Result<Reply> {
        self.request(
            "GET",
            &format!("http://{}{port_path}", addr_of(host)),
            None,
            None,
            &[],
        )
    }

    /// Whether Redis answers PING, asked from the client host.
    pub fn redis_ping(&self) -> bool {
        let script = "exec 3<>/dev/tcp/192.0.2.140/6379 && printf 'PING\\r\\n' >&3 && read -t 1 l <&3 && [ \"${l%$'\\r'}\" = +PONG ]";
        self.lab
            .exec("cl", &["timeout", "2", "bash", "-c", script])
            .is_ok_and(|o| o.status.success())
    }

    /// Whether the proxy on `host` reports every upstream server up.
    pub fn all_servers_up(&self, host: &str) -> bool {
        let Ok(r) = self.admin(host, ":9090/status") else {
            return false;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) else {
            return false;
        };
        let servers: Vec<&serde_json::Value> = v["upstreams"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|u| u["servers"].as_array().into_iter().flatten())
            .collect();
        !servers.is_empty() && servers.iter().all(|s| s["up"] == true)
    }

    /// Takes a host off the network (its eth0 down), as when it loses power.
    pub fn link(&self, host: &str, up: bool) -> io::Result<()> {
        let state = if up { "up" } else { "down" };
        let out = self.lab.exec(host, &["ip", "link", "set", "eth0", state])?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "ip link set eth0 {state} on {host} failed"
            )))
        }
    }

    /// Namespace name of a host, for `ip netns exec`.
    pub fn ns(&self, host: &str) -> String {
        self.lab.ns(host)
    }

    /// Where configs and logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last `lines` lines of a component's log.
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let v: Vec<&str> = text.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    fn component(&self, name: &str) -> io::Result<&Component> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no component {name}; known: {COMPONENTS:?}"),
                )
            })
    }
}

impl Drop for FiveHosts {
    fn drop(&mut self) {
        // Lab's own Drop kills the processes it started and deletes the
        // namespaces; the directory keeps the logs unless the run was clean.
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Address of a standard host, without the prefix length.
pub fn addr_of(host: &str) -> &'static str {
    STANDARD_HOSTS
        .iter()
        .find(|(h, _)| *h == host)
        .and_then(|(_, cidr)| cidr.split('/').next())
        .unwrap_or("0.0.0.0")
}

/// The TOML of one proxy host: `[proxy]` in front of both backends and `[ha]`
/// tracking that proxy's health, as in deploy/hosts/px1.toml.
pub fn proxy_host_config(priority: u8, s: &Settings) -> String {
    let auth = if s.version == 2 {
        "auth_pass = \"1111\"\n"
    } else {
        ""
    };
    format!(
        r#"# Written by stackd lab --netns (compare deploy/hosts/px1.toml).
{proxy}
[ha]
admin = "0.0.0.0:9091"

[[ha.instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {priority}
advert_int = "{advert}"
version = {version}
{auth}virtual_ipaddress = ["{vip}/24"]
preempt = true
track = [ {{ http = "http://127.0.0.1:9090/healthz", interval = "{track}", timeout = "500ms", fall = 2, rise = 2, weight = 0 }} ]
"#,
        advert = s.advert_int,
        version = s.version,
        vip = STANDARD_VIP,
        track = s.track_interval,
        proxy = crate::proxy_toml::proxy_table(
            "0.0.0.0:80",
            "0.0.0.0:9090",
            &[
                ("192.0.2.137:8080".into(), "137server1".into()),
                ("192.0.2.139:8080".into(), "139server2".into()),
            ],
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_host_config_is_valid() {
        for s in [
            Settings::default(),
            Settings {
                version: 2,
                advert_int: "1s",
                track_interval: "500ms",
            },
        ] {
            let text = proxy_host_config(100, &s);
            stackd_common::Config::from_toml_str(&text, Path::new("px1.toml")).unwrap();
        }
    }
}
