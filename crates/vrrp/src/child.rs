//! Programs `stackd ha` starts (notify scripts, track scripts) never inherit
//! its capabilities.
//!
//! The shipped unit runs ha as an unprivileged user with CAP_NET_RAW and
//! CAP_NET_ADMIN as *ambient* capabilities, and ambient capabilities pass to
//! every program exec'd. A notify script that only logs a line does not need
//! to reconfigure the network, so the ambient set is cleared in the child
//! before exec (as root this changes nothing: root gets its capabilities
//! from being root).

use tokio::process::Command;

/// A command for `program` with a cleared ambient capability set.
pub(crate) fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // one async-signal-safe system call (prctl), touching no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            );
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    cmd
}

#[cfg(test)]
mod tests {
    /// Meaningful when run with ambient capabilities (the e2e test
    /// ha_unprivileged does); as root the set is empty anyway.
    #[tokio::test]
    async fn children_have_no_ambient_capabilities() {
        let out = super::command("/bin/grep")
            .args(["CapAmb", "/proc/self/status"])
            .output()
            .await
            .expect("grep runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), "CapAmb:\t0000000000000000", "{text}");
    }
}
