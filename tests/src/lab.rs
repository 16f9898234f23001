//! `stackd lab` as a child process, with what its banner says: the ports,
//! the PIDs and the directory holding the configs it wrote. Loopback mode
//! and `--netns` mode (whose stdin takes component names to stop or start).
#![allow(clippy::disallowed_methods)] // blocking tests have no tokio clock to pause

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stackd_testkit::{stackd_bin, Guard};

/// A running lab. Dropping it stops the lab (SIGTERM, then SIGKILL), which
/// stops everything it started, then deletes the lab's directory unless the
/// test failed.
pub struct Lab {
    pub guard: Guard,
    /// `TMPDIR` of the lab, where it writes its configs and logs; declared
    /// after `guard`, so it goes after the lab has stopped.
    _scratch: Scratch,
    /// The banner's lines, up to the one that says what to try.
    pub banner: Vec<String>,
    stdin: Option<ChildStdin>,
    /// What the lab prints after its banner.
    later: mpsc::Receiver<String>,
}

/// The loopback lab (`stackd lab --port 0`).
pub type LoopbackLab = Lab;

impl Lab {
    /// Starts `stackd lab --port 0` and waits (up to 60 s) for its banner.
    pub fn start() -> Lab {
        let scratch = Scratch::new();
        let mut cmd = Command::new(stackd_bin());
        cmd.args(["lab", "--port", "0"])
            .env("TMPDIR", scratch.path());
        Lab::spawn(
            Guard::spawn("stackd lab", piped(&mut cmd)),
            scratch,
            false,
            "try: kill",
            60,
        )
    }

    /// Starts `stackd lab --netns --port 0` (root) and waits for its banner;
    /// [`Lab::toggle`] then stops or starts a component, as a person types.
    pub fn netns() -> Lab {
        let scratch = Scratch::new();
        let mut cmd = Command::new(stackd_bin());
        cmd.args(["lab", "--netns", "--port", "0"])
            .env("TMPDIR", scratch.path());
        Lab::spawn(
            Guard::spawn_interactive("stackd lab --netns", piped(&mut cmd)),
            scratch,
            true,
            "see the VIP on the MASTER",
            90, // five namespaces, seven processes, an election
        )
    }

    /// Reads the banner until a line containing `last`.
    fn spawn(
        mut guard: Guard,
        scratch: Scratch,
        keep_stdin: bool,
        last: &str,
        within_secs: u64,
    ) -> Lab {
        let stdin = if keep_stdin {
            guard.child().stdin.take()
        } else {
            None
        };
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
        let deadline = Instant::now() + Duration::from_secs(within_secs);
        while !banner.iter().any(|l: &String| l.contains(last)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => banner.push(line),
                Err(_) => panic!("lab did not print its banner within {within_secs}s: {banner:#?}"),
            }
        }
        Lab {
            guard,
            _scratch: scratch,
            banner,
            stdin,
            later: rx,
        }
    }

    /// The next line the lab prints that contains `text`, waiting at most
    /// `within`.
    pub fn wait_line(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.later.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("the lab did not print {text:?} within {within:?}"),
            }
        }
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

    /// The PID on a `<what> <name> <pid> ...` line starting with `prefix`.
    pub fn pid(&self, prefix: &str) -> u32 {
        self.line(prefix)
            .split_whitespace()
            .nth(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {:?}", self.line(prefix)))
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

    /// `--netns` mode: stops or starts `component` (a name like `px1-ha`).
    pub fn toggle(&mut self, component: &str) {
        let Some(stdin) = self.stdin.as_mut() else {
            panic!("only the --netns lab takes commands");
        };
        writeln!(stdin, "{component}").unwrap_or_else(|e| panic!("lab stdin: {e}"));
    }
}

/// A lab keeps its logs when it stops, for the person who ran it; under a
/// test they go with the test, unless it failed.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("stackd-lab-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("scratch dir for the lab: {e}"));
        Scratch(dir)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("the lab's logs are kept in {}", self.0.path().display());
        }
    }
}

fn piped(cmd: &mut Command) -> &mut Command {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null())
}
