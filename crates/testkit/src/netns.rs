//! A small Linux network-namespace lab for tests and `stackd lab --netns`.
//!
//! Every host is a namespace with one interface `eth0`, plugged through a
//! veth pair into a bridge that lives in its own namespace, so nothing is
//! ever added to the caller's namespace. Built with the `ip` command
//! (iproute2): simple, and what an operator would type to debug it.
//!
//! Names carry a per-run prefix `<tag><pid>n<seq>-` so parallel runs never
//! collide, and [`cleanup_stale`] can tell a crashed run's leftovers (its
//! pid is gone) from a live run's. [`Lab`]'s `Drop` kills the processes it
//! started (by PID) and deletes every namespace it created, also when the
//! test that owns it panics.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use stackd_testkit::netns::Lab;
//! let lab = Lab::standard("doc")?; // px1 px2 be1 be2 rd cl on 192.0.2.0/24
//! assert!(lab.reachable("cl", "192.0.2.133"));
//! # Ok(()) }
//! ```

use std::io;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::process::Adopted;

/// SPEC.md "Lab topology": (host, address).
pub const STANDARD_HOSTS: [(&str, &str); 6] = [
    ("px1", "192.0.2.133/24"),
    ("px2", "192.0.2.135/24"),
    ("be1", "192.0.2.137/24"),
    ("be2", "192.0.2.139/24"),
    ("rd", "192.0.2.140/24"),
    ("cl", "192.0.2.10/24"),
];

/// The VIP of the standard lab.
pub const STANDARD_VIP: &str = "192.0.2.88";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A set of namespaces on one bridge; everything is removed on drop.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    hosts: Vec<(String, String)>,
    children: Mutex<Vec<Child>>,
    /// Processes that took over from one this lab started (a proxy's
    /// binary upgrade): not our children, but ours to signal and stop.
    adopted: Mutex<Vec<Adopted>>,
}

/// Runs `ip` with `args`; a non-zero exit is an error carrying stderr.
pub fn ip(args: &[&str]) -> io::Result<Output> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

// === impl Lab ===

impl Lab {
    /// An empty lab: just the bridge namespace. `tag` is a short word (letters).
    pub fn new(tag: &str) -> io::Result<Lab> {
        let prefix = format!(
            "{tag}{}n{}-",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            hosts: Vec::new(),
            children: Mutex::new(Vec::new()),
            adopted: Mutex::new(Vec::new()),
        };
        let br = lab.ns("br");
        ip(&["netns", "add", &br])?;
        lab.namespaces.push(br.clone());
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        // No STP delay, no multicast snooping: VRRP multicast must flow at once.
        ip(&[
            "-n",
            &br,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        Ok(lab)
    }

    /// The lab of SPEC.md: px1 px2 be1 be2 rd cl.
    pub fn standard(tag: &str) -> io::Result<Lab> {
        let mut lab = Lab::new(tag)?;
        for (h, a) in STANDARD_HOSTS {
            lab.add_host(h, a)?;
        }
        Ok(lab)
    }

    /// The per-run prefix of every namespace name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace name of `host`.
    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// Adds a host namespace with `eth0` at `cidr` (e.g. "192.0.2.133/24").
    pub fn add_host(&mut self, host: &str, cidr: &str) -> io::Result<()> {
        let ns = self.ns(host);
        let br = self.ns("br");
        let port = format!("v{}", host.chars().take(13).collect::<String>());
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&[
            "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"])?;
        ip(&["-n", &ns, "addr", "add", cidr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        self.hosts.push((host.to_owned(), cidr.to_owned()));
        Ok(())
    }

    /// The address of `host` without the prefix length.
    pub fn addr(&self, host: &str) -> Option<String> {
        let (_, cidr) = self.hosts.iter().find(|(h, _)| h == host)?;
        Some(cidr.split('/').next().unwrap_or(cidr).to_owned())
    }

    /// The command `args` as it would run inside `host`.
    pub fn command(&self, host: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host)]).args(args);
        c
    }

    /// Runs `args` inside `host` to completion.
    pub fn exec(&self, host: &str, args: &[&str]) -> io::Result<Output> {
        self.command(host, args).stdin(Stdio::null()).output()
    }

    /// Whether `addr` answers from inside `host` at the IP level: a TCP
    /// connect to port 9 that is refused (RST) counts, as does one that
    /// connects. Needs no ping binary; gives up after one second.
    pub fn reachable(&self, host: &str, addr: &str) -> bool {
        let script = format!("exec 3<>/dev/tcp/{addr}/9");
        match self.exec(host, &["timeout", "1", "bash", "-c", &script]) {
            Ok(o) => o.status.success() || String::from_utf8_lossy(&o.stderr).contains("refused"),
            Err(_) => false,
        }
    }

    /// Starts `cmd` (from [`Lab::command`]) and remembers it for cleanup.
    /// `ip netns exec` execs the program, so the returned PID is the program's.
    pub fn spawn(&self, mut cmd: Command) -> io::Result<u32> {
        let child = cmd.stdin(Stdio::null()).spawn()?;
        let pid = child.id();
        self.lock_children().push(child);
        Ok(pid)
    }

    /// Counts `pid`, which took over from a process this lab started, as
    /// the lab's own: [`Lab::signal`] and [`Lab::wait_exit`] take it, and
    /// it is killed with the rest.
    pub fn adopt(&self, pid: u32) {
        if let Some(p) = Adopted::of(pid) {
            lock(&self.adopted).push(p);
        }
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to a process this lab started.
    pub fn signal(&self, pid: u32, signal: &str) -> io::Result<()> {
        let ours = self.lock_children().iter().any(|c| c.id() == pid)
            || lock(&self.adopted)
                .iter()
                .any(|p| p.pid() == pid && !p.ended());
        if !ours {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("pid {pid} was not started by this lab"),
            ));
        }
        let st = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()?;
        if st.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill -{signal} {pid} failed")))
        }
    }

    /// Waits up to `timeout` for a started or adopted process to exit;
    /// true if it did.
    pub fn wait_exit(&self, pid: u32, timeout: std::time::Duration) -> bool {
        let step = std::time::Duration::from_millis(10);
        let adopted = lock(&self.adopted).iter().find(|p| p.pid() == pid).copied();
        for _ in 0..=(timeout.as_millis() / step.as_millis()) {
            let mut kids = self.lock_children();
            if let Some(c) = kids.iter_mut().find(|c| c.id() == pid) {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return true;
                }
            } else if adopted.is_none_or(|p| p.ended()) {
                return true;
            }
            drop(kids);
            std::thread::sleep(step);
        }
        false
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        lock(&self.children)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.lock_children().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for p in lock(&self.adopted).iter() {
            if !p.signal(crate::process::Signal::SIGKILL) {
                continue;
            }
            for _ in 0..100 {
                if p.ended() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        for ns in self.namespaces.iter().rev() {
            kill_namespace_pids(ns);
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Moves the calling thread (only it) into network namespace `ns`, as
/// `ip netns` names it: a client thread then talks from inside a lab host
/// with plain sockets, at its own pace, without a process per request.
pub fn enter_thread(ns: &str) -> io::Result<()> {
    let f = std::fs::File::open(format!("/run/netns/{ns}"))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Kills whatever still runs inside `ns` (a test's grandchildren).
fn kill_namespace_pids(ns: &str) {
    if let Ok(out) = ip(&["netns", "pids", ns]) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// Deletes namespaces named `<tag><pid>n...` whose creating process is gone
/// (a crashed earlier run), killing what still runs inside them. Returns
/// the names removed.
pub fn cleanup_stale(tag: &str) -> io::Result<Vec<String>> {
    let out = ip(&["netns", "list"])?;
    let mut removed = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(tag) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if pid.is_empty() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_namespace_pids(name);
        if ip(&["netns", "del", name]).is_ok() {
            removed.push(name.to_owned());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::process::is_root as root;

    #[test]
    fn two_hosts_ping_and_everything_is_removed() {
        if !root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut lab = Lab::new("nstest").expect("lab");
        lab.add_host("a", "192.0.2.1/24").expect("a");
        lab.add_host("b", "192.0.2.2/24").expect("b");
        assert!(lab.reachable("a", "192.0.2.2"));
        assert!(!lab.reachable("a", "192.0.2.3"), "nobody has .3");
        let ns = lab.ns("a");
        let seen = std::thread::spawn(move || {
            enter_thread(&ns).expect("enter");
            std::net::UdpSocket::bind("192.0.2.1:0").is_ok()
        });
        assert!(seen.join().expect("thread"), "the thread sees a's address");
        assert!(
            std::net::UdpSocket::bind("192.0.2.1:0").is_err(),
            "we do not"
        );
        let pid = lab
            .spawn(lab.command("b", &["sleep", "30"]))
            .expect("spawn");
        lab.signal(pid, "TERM").expect("signal");
        assert!(lab.wait_exit(pid, std::time::Duration::from_secs(5)));
        assert!(lab.signal(1, "TERM").is_err(), "only our own children");
        let prefix = lab.prefix().to_owned();
        drop(lab);
        let list = ip(&["netns", "list"]).expect("list");
        assert!(!String::from_utf8_lossy(&list.stdout).contains(&prefix));
    }

    #[test]
    fn stale_namespaces_of_dead_runs_are_removed() {
        if !root() {
            return;
        }
        // pid 999999999 cannot exist.
        let name = "nsstale999999999n0-x";
        ip(&["netns", "add", name]).expect("add");
        let removed = cleanup_stale("nsstale").expect("cleanup");
        assert_eq!(removed, vec![name.to_owned()]);
    }
}
