//! Test harness: real `redis-server` / `redis-sentinel` processes on free
//! loopback ports, each in its own temp dir, killed by PID when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One Redis process (server or sentinel) this test started.
pub struct RedisProc {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    bin: &'static str,
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Sends one inline command and returns the first reply line (`+PONG`, `:1`...).
pub fn raw(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
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

impl RedisProc {
    /// A standalone redis-server without persistence.
    pub fn server() -> RedisProc {
        Self::spawn_retrying("redis-server", |_, _| Vec::new())
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
            std::fs::write(&conf, text).expect("write sentinel.conf");
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
            let dir = tempfile::tempdir().expect("tempdir");
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

    /// (Re)starts the process on its port; waits up to 5s for PING.
    pub fn start(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", self.bin)))
            .expect("log file");
        let child = Command::new(self.bin)
            .args(&self.args)
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (apt-get install redis-server redis-sentinel): {e}",
                    self.bin
                )
            });
        self.child = Some(child);
        for _ in 0..100 {
            if raw(self.port, "PING").is_ok_and(|r| r == "+PONG") {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                break; // exited: port taken
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

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain (sync) connection for checking what the store wrote.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.bin)))
            .unwrap_or_default()
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.stop();
    }
}

pub mod backend;
pub mod http;

impl RedisProc {
    /// Freezes the process (SIGSTOP): it keeps its port but answers nothing,
    /// which is what a hung Redis looks like to clients.
    pub fn freeze(&self, on: bool) {
        if let Some(c) = &self.child {
            let sig = if on { "-STOP" } else { "-CONT" };
            let ok = Command::new("kill")
                .arg(sig)
                .arg(c.id().to_string())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} {}", c.id());
        }
    }
}
