//! `stackd lab` (loopback) as a child process, with what its banner says:
//! the ports, the PIDs and the directory holding the configs it wrote.
#![allow(clippy::disallowed_methods)] // blocking tests have no tokio clock to pause

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stackd_testkit::{stackd_bin, Guard};

/// A running loopback lab. Dropping it stops the lab (SIGTERM, then SIGKILL).
pub struct LoopbackLab {
    pub guard: Guard,
    /// The banner's lines, up to the first `try: kill`.
    pub banner: Vec<String>,
}

impl LoopbackLab {
    /// Starts `stackd lab --port 0` and waits (up to 60 s) for its banner.
    pub fn start() -> LoopbackLab {
        let mut guard = Guard::spawn(
            "stackd lab",
            Command::new(stackd_bin())
                .args(["lab", "--port", "0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let Some(stdout) = guard.child().stdout.take() else {
            panic!("stackd lab has no stdout pipe");
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the banner: the lab prints as it goes, and
            // a closed pipe would make its next println! fail.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !banner.iter().any(|l: &String| l.contains("try: kill")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => banner.push(line),
                Err(_) => panic!("lab did not print its banner within 60s: {banner:#?}"),
            }
        }
        LoopbackLab { guard, banner }
    }

    /// The first banner line starting with `prefix` (after indentation).
    pub fn line(&self, prefix: &str) -> &str {
        self.banner
            .iter()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {:#?}", self.banner))
    }

    /// The port in the `http://127.0.0.1:PORT/` of the line starting with `prefix`.
    pub fn port(&self, prefix: &str) -> u16 {
        self.line(prefix)
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {:?}", self.line(prefix)))
    }

    /// The PID of the backend whose node id is `node`.
    pub fn backend_pid(&self, node: &str) -> u32 {
        self.banner
            .iter()
            .find(|l| l.trim_start().starts_with("backend") && l.contains(node))
            .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or_else(|| panic!("no backend {node} in {:#?}", self.banner))
    }

    /// The directory with the lab's logs and the configs it wrote (`proxy.toml`).
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(
            self.line("logs")
                .trim_start()
                .trim_start_matches("logs")
                .trim(),
        )
    }
}
