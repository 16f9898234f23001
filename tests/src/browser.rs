//! Headless Chromium (Debian's `chromium`) for page tests: a screenshot and
//! the DOM after the page's scripts ran. Flags from the machine notes: no
//! sandbox (root), no background networking (the network is closed), a
//! fresh profile per call.

use std::path::Path;
use std::process::Command;

/// How long the page's timers may run (virtual time) before the capture.
const BUDGET_MS: &str = "4000";

fn chromium(netns: Option<&str>, profile: &Path) -> Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "chromium"]);
            c
        }
        None => Command::new("chromium"),
    };
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1100,1500",
    ])
    .arg(format!("--virtual-time-budget={BUDGET_MS}"))
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Saves a PNG of `url` to `png` and returns the DOM as the scripts left it.
/// `netns`: run the browser inside this network namespace.
pub fn capture(url: &str, png: &Path, netns: Option<&str>) -> String {
    if let Some(dir) = png.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let shot = chromium(netns, profile.path())
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run chromium (apt-get install chromium): {e}"));
    assert!(
        shot.status.success() && png.is_file(),
        "chromium --screenshot {url} failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dom = chromium(netns, profile.path())
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run chromium: {e}"));
    assert!(dom.status.success(), "chromium --dump-dom {url} failed");
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// Asserts `png` is a PNG with something drawn (a blank page compresses to a few KB).
pub fn assert_picture(png: &Path, min_bytes: u64) {
    let bytes = std::fs::read(png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    assert!(
        bytes.len() as u64 >= min_bytes,
        "{} is only {} bytes: is the page blank?",
        png.display(),
        bytes.len()
    );
}
