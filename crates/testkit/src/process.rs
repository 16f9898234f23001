//! Processes a test starts, and only those.
//!
//! A [`Guard`] owns one child: dropping it (at the end of the test, or while
//! a failed test unwinds) stops that PID (SIGTERM, then SIGKILL after
//! [`GRACE`], so a `stackd` can remove its VIPs and its own children) and
//! reaps it, and on failure prints the tail of the child's log so the report
//! says what the process said.
//! Nothing here ever signals a PID the test did not start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How long a guarded child has between SIGTERM and SIGKILL when dropped.
pub const GRACE: Duration = Duration::from_secs(3);

/// A child process stopped (by PID) and reaped on drop.
#[derive(Debug)]
pub struct Guard {
    name: String,
    child: Child,
    log: Option<PathBuf>,
}

// === impl Guard ===

impl Guard {
    /// Starts `cmd` as it is configured (stdin from /dev/null).
    pub fn spawn(name: &str, cmd: &mut Command) -> Guard {
        Guard::spawn_with_stdin(name, cmd, Stdio::null())
    }

    /// Starts `cmd` with a pipe on its stdin, for programs a person drives by
    /// typing (`stackd lab` takes component names): take it with
    /// `child().stdin.take()`.
    pub fn spawn_interactive(name: &str, cmd: &mut Command) -> Guard {
        Guard::spawn_with_stdin(name, cmd, Stdio::piped())
    }

    fn spawn_with_stdin(name: &str, cmd: &mut Command, stdin: Stdio) -> Guard {
        let child = cmd
            .stdin(stdin)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", cmd.get_program()));
        Guard {
            name: name.to_owned(),
            child,
            log: None,
        }
    }

    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn_logged(name: &str, cmd: &mut Command, log: &Path) -> Guard {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup {}: {e}", log.display()));
        cmd.stdout(Stdio::from(file)).stderr(Stdio::from(err));
        let mut g = Guard::spawn(name, cmd);
        g.log = Some(log.to_owned());
        g
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to this child.
    pub fn signal(&self, sig: Signal) {
        signal(self.pid(), sig);
    }

    /// Whether the child still runs (reaps it if it has exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `within` for the child to exit; its status, or `None`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut status = None;
        crate::wait::poll(within, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    /// What the child has written to its log so far.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Waits up to `within` for `needle` to appear in the log.
    pub fn wait_log(&self, needle: &str, within: Duration) {
        crate::wait::wait_until(
            &format!("{:?} in the log of {}", needle, self.name),
            within,
            || self.log().contains(needle),
        );
    }

    /// Direct access, for stdin/stdout pipes set up by the caller.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Ok(pid) = i32::try_from(self.pid()) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            if self.wait_exit(GRACE).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if std::thread::panicking() && self.log.is_some() {
            eprintln!(
                "---- {} (last 40 lines) ----\n{}",
                self.name,
                tail(&self.log(), 40)
            );
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A process that took over from one we started (a proxy's binary
/// upgrade, which names its successor with `MAINPID=`): not our child, so
/// known by its PID and its start time, so that a PID the system has given
/// to another process since is never taken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adopted {
    pid: u32,
    started: u64,
}

impl Adopted {
    /// `pid` as it runs now; `None` if it is already gone.
    pub fn of(pid: u32) -> Option<Adopted> {
        let (_, started) = stat(pid)?;
        Some(Adopted { pid, started })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it has ended. It is not our child while the process it took
    /// over from runs; then it is ours (if we are a subreaper) and reaped
    /// here, or init's, and a zombie until init reaps it.
    pub fn ended(&self) -> bool {
        use nix::sys::wait::{waitpid, WaitPidFlag};
        if let Ok(raw) = i32::try_from(self.pid) {
            let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
        }
        match stat(self.pid) {
            Some((state, started)) => started != self.started || matches!(state, 'Z' | 'X'),
            None => true,
        }
    }

    /// Sends `sig` unless it has ended; false if it could not be sent.
    pub fn signal(&self, sig: Signal) -> bool {
        let Ok(raw) = i32::try_from(self.pid) else {
            return false;
        };
        !self.ended() && nix::sys::signal::kill(Pid::from_raw(raw), sig).is_ok()
    }
}

/// (state, start time in clock ticks) of `pid` from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": fields after the last ')', start time 20th of them.
    let (_, rest) = text.rsplit_once(") ")?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let started = fields.nth(18)?.parse().ok()?;
    Some((state, started))
}

/// Sends `sig` to `pid`; panics when that fails (the PID is the caller's own
/// child, so a failure is a bug in the test).
pub fn signal(pid: u32, sig: Signal) {
    let raw = i32::try_from(pid).unwrap_or_else(|_| panic!("pid {pid} out of range"));
    nix::sys::signal::kill(Pid::from_raw(raw), sig)
        .unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
}

/// What a command that ran to its end printed, and how it exited.
#[derive(Clone, Debug)]
pub struct Ran {
    /// The exit code; -1 when a signal ended it.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout then stderr, for assertions that do not care which.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `stackd ARGS...` to its end (`stackd check`, `status`, `ctl`).
pub fn stackd<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    ran(Command::new(stackd_bin()).args(args))
}

/// [`stackd`] run in `dir`, for arguments relative to it.
pub fn stackd_in<I, S>(dir: &Path, args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    ran(Command::new(stackd_bin()).args(args).current_dir(dir))
}

fn ran(cmd: &mut Command) -> Ran {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", stackd_bin().display()));
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Whether this process runs as root (namespaces and raw sockets need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Panics unless root: the tests that need it say so instead of failing oddly.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (network namespaces, raw sockets); CI runs as root"
    );
}

/// The `stackd` binary of this build profile, built first if needed.
///
/// Cargo only tells a package's own tests where its binary is, so tests in
/// other crates ask cargo (`$CARGO`, set while `cargo test` runs) to build
/// `stackd` once per test process: a no-op when it is fresh, and never a
/// stale binary. Run outside cargo, the binary must already exist.
pub fn stackd_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| panic!("unexpected test path {}", exe.display()))
            .to_owned();
        if let Some(cargo) = std::env::var_os("CARGO") {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "-p", "stackd", "--bin", "stackd"])
                .current_dir(root);
            // Cargo gives a test its package's CARGO_PKG_* and CARGO_MANIFEST_*;
            // build scripts that watch them (ring's do) would see them change
            // and rebuild half the tree here, then again in the next plain
            // `cargo build`.
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k.starts_with("CARGO_PKG_")
                    || k.starts_with("CARGO_MANIFEST_")
                    || [
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                    ]
                    .contains(&k.as_ref())
                {
                    cmd.env_remove(k.as_ref());
                }
            }
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd
                .status()
                .unwrap_or_else(|e| panic!("cannot run cargo build for stackd: {e}"));
            assert!(status.success(), "cargo build -p stackd failed");
        }
        let bin = profile_dir.join("stackd");
        assert!(
            bin.is_file(),
            "{} is missing: run `cargo build --bin stackd` first",
            bin.display()
        );
        bin
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adopted_process_is_known_by_its_start_time_and_ends() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let adopted = Adopted::of(child.id()).expect("a running process has a stat");
        assert!(!adopted.ended());
        let reused = Adopted {
            started: adopted.started + 1,
            ..adopted
        };
        assert!(
            reused.ended(),
            "another process under the same PID is not it"
        );
        assert!(!reused.signal(Signal::SIGTERM), "and is never signalled");
        assert!(adopted.signal(Signal::SIGKILL));
        child.wait().expect("wait");
        assert!(adopted.ended());
        assert!(!adopted.signal(Signal::SIGKILL));
    }

    #[test]
    fn guard_kills_its_child_on_drop_and_reports_exit() {
        let mut g = Guard::spawn("sleep", Command::new("sleep").arg("30"));
        let pid = g.pid();
        assert!(g.running());
        drop(g);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || {
                // A recycled PID would not be our zombie: it was reaped.
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| !c.contains("sleep"))
            }
        );
        let mut g = Guard::spawn("true", &mut Command::new("true"));
        assert!(g
            .wait_exit(Duration::from_secs(5))
            .is_some_and(|s| s.success()));
    }

    #[test]
    fn an_interactive_child_reads_what_the_test_types() {
        use std::io::{BufRead, Write};
        let mut g = Guard::spawn_interactive(
            "head",
            Command::new("head")
                .args(["-n", "1"])
                .stdout(Stdio::piped()),
        );
        let mut stdin = g.child().stdin.take().unwrap();
        writeln!(stdin, "px1-ha").unwrap();
        let mut line = String::new();
        let out = g.child().stdout.take().unwrap();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(line, "px1-ha\n");
        assert!(g.wait_exit(Duration::from_secs(5)).is_some());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
