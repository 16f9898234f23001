//! Real `redis-server` and `redis-sentinel` processes on free loopback
//! ports, each in its own temporary directory, killed by PID when dropped.
//!
//! Session tests run against the real thing, never a mock: persistence is
//! off, the port is free, and a launcher that loses a port race retries on
//! another one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::free_port;

/// One Redis process (server or sentinel) this test started.
pub struct RedisProc {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    bin: &'static str,
}

/// Sends one inline command to `127.0.0.1:port` and returns the first reply
/// line (`+PONG`, `:1`, `-ERR ...`), within 2 s.
pub fn command(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned())
}

// === impl RedisProc ===

impl RedisProc {
    /// A standalone redis-server without persistence.
    pub fn server() -> RedisProc {
        Self::spawn_retrying("redis-server", |_, _| Vec::new())
    }

    /// A redis-server reading `conf` (for example the shipped one) with
    /// `overrides` after it (`--port` and `--bind` are always overridden).
    pub fn with_config(conf: &Path, overrides: &[&str]) -> RedisProc {
        let conf = conf.display().to_string();
        let overrides: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
        Self::spawn_retrying("redis-server", move |_, _| {
            let mut a = vec![conf.clone()];
            a.extend(overrides.iter().cloned());
            a
        })
    }

    /// A replica of the server on `master_port`.
    pub fn replica_of(master_port: u16) -> RedisProc {
        Self::spawn_retrying("redis-server", move |_, _| {
            vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                master_port.to_string(),
            ]
        })
    }

    /// A sentinel watching `master` at `master_port` (quorum `quorum`, down after 1s).
    pub fn sentinel(master: &str, master_port: u16, quorum: u32) -> RedisProc {
        let master = master.to_owned();
        Self::spawn_retrying("redis-sentinel", move |port, dir| {
            let conf = dir.join("sentinel.conf");
            let text = format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {master} 127.0.0.1 {master_port} {quorum}\n\
                 sentinel down-after-milliseconds {master} 1000\nsentinel failover-timeout {master} 4000\n\
                 sentinel parallel-syncs {master} 1\n",
                dir.display()
            );
            std::fs::write(&conf, text).unwrap_or_else(|e| panic!("write sentinel.conf: {e}"));
            vec![conf.display().to_string()]
        })
    }

    /// A Redis Cluster node (its bus port, port + 10000, must be free too).
    pub fn cluster_node() -> RedisProc {
        Self::spawn_retrying("redis-server", |_, dir| {
            let conf = dir.join("nodes.conf").display().to_string();
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
                "--cluster-node-timeout",
                "2000",
            ]
            .map(String::from)
            .to_vec()
        })
    }

    fn spawn_retrying(bin: &'static str, extra: impl Fn(u16, &Path) -> Vec<String>) -> RedisProc {
        for _ in 0..5 {
            let mut port = free_port();
            // Keep room for a cluster bus port (port + 10000) that is also free.
            while port > 55_000 || TcpListener::bind(("127.0.0.1", port + 10_000)).is_err() {
                port = free_port();
            }
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
            let mut args = extra(port, dir.path());
            if bin == "redis-server" {
                args.extend(
                    [
                        "--port",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--daemonize",
                        "no",
                    ]
                    .map(String::from),
                );
                args.extend(["--dir".into(), dir.path().display().to_string()]);
            }
            let mut p = RedisProc {
                child: None,
                port,
                dir,
                args,
                bin,
            };
            if p.start() {
                return p;
            }
        }
        panic!("{bin} did not start on any of 5 free ports");
    }

    /// (Re)starts the process on its port; waits up to 5 s until it answers
    /// (PING, or `-NOAUTH` when the config demands a password).
    pub fn start(&mut self) -> bool {
        let log = std::fs::File::create(self.log_path())
            .unwrap_or_else(|e| panic!("create {}: {e}", self.log_path().display()));
        let err = log.try_clone().unwrap_or_else(|e| panic!("dup log: {e}"));
        let child = Command::new(self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (apt-get install redis-server redis-sentinel): {e}",
                    self.bin
                )
            });
        self.child = Some(child);
        for _ in 0..100 {
            if command(self.port, "PING").is_ok_and(|r| r == "+PONG" || r.starts_with("-NOAUTH")) {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                break; // exited: port taken, or a bad config (see log())
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    /// Kills the process (SIGKILL, by PID) and reaps it; the port is free after.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the process (SIGSTOP) or thaws it (SIGCONT): frozen, it keeps
    /// its port but answers nothing, which is what a hung Redis looks like.
    pub fn freeze(&self, on: bool) {
        if let Some(c) = &self.child {
            let sig = if on {
                crate::process::Signal::SIGSTOP
            } else {
                crate::process::Signal::SIGCONT
            };
            crate::process::signal(c.id(), sig);
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain (blocking) connection for checking what the store wrote.
    pub fn client(&self) -> redis::Connection {
        self.try_client()
            .unwrap_or_else(|e| panic!("connect to redis at {}: {e}", self.url()))
    }

    /// [`RedisProc::client`] for a poll that tries again: a server changing
    /// roles (a failover) may refuse or reset a new connection meanwhile.
    pub fn try_client(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
    }

    /// What the process logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Its scratch directory (the working dir, where config files can go).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join(format!("{}.log", self.bin))
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.stop();
    }
}
