//! The tracking probes: one task per `[[ha.instance.track]]` entry, feeding
//! raw ok/fail results to the driver, which owns the hysteresis
//! ([`crate::track`]). A probe that times out counts as a failure.

use stackd_common::config::ha::{Check, TrackSpec};
use stackd_common::http_client::HttpClient;
use tokio::sync::mpsc;

pub use crate::track::Probe;
use tokio_util::sync::CancellationToken;

/// One probe result: (index of the track entry, what it saw).
pub type Sample = (usize, Probe);

/// Runs one probe of `t`; a probe slower than `t.timeout` failed.
///
/// An HTTP check answered 503 with a body starting "draining" (what
/// `stackd proxy` says between SIGTERM and closing its listeners) is
/// [`Probe::Draining`]: a planned stop, acted on at once.
pub async fn probe(http: &HttpClient, t: &TrackSpec) -> Probe {
    let up = |ok: bool| if ok { Probe::Up } else { Probe::Down };
    let work = async {
        match &t.check {
            Check::Http(url) => match http.get(url, t.timeout).await {
                Ok(r) if r.status.is_success() => Probe::Up,
                Ok(r) if r.status == 503 && r.body.starts_with(b"draining") => Probe::Draining,
                _ => Probe::Down,
            },
            Check::Process(name) => up(process_running(name)),
            Check::Script(cmd) => up(script_ok(cmd).await),
            Check::Interface(ifname) => up(crate::iface::link_up(ifname)),
        }
    };
    tokio::time::timeout(t.timeout, work)
        .await
        .unwrap_or(Probe::Down)
}

/// A process whose `/proc/PID/comm` is `name` exists.
pub fn process_running(name: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .any(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
}

/// keepalived `track_script`: run through `sh -c`, exit 0 is up. The child is
/// killed if the probe times out (kill_on_drop).
async fn script_ok(cmd: &str) -> bool {
    let child = crate::child::command("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    child.await.is_ok_and(|s| s.success())
}

/// Probes `t` every `t.interval` until `stop`.
pub async fn run(
    index: usize,
    t: TrackSpec,
    http: HttpClient,
    out: mpsc::Sender<Sample>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(t.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ok = tokio::select! {
            _ = stop.cancelled() => return,
            ok = probe(&http, &t) => ok,
        };
        if out.send((index, ok)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stackd_common::config::ha::OnDown;

    use super::*;

    fn http() -> HttpClient {
        HttpClient::new("stackd-ha-test")
    }

    fn track(check: Check) -> TrackSpec {
        TrackSpec {
            check,
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
            fall: 1,
            rise: 1,
            on_down: OnDown::Fault,
        }
    }

    #[tokio::test]
    async fn script_exit_code_and_timeout() {
        assert_eq!(
            probe(&http(), &track(Check::Script("exit 0".into()))).await,
            Probe::Up
        );
        assert_eq!(
            probe(&http(), &track(Check::Script("exit 3".into()))).await,
            Probe::Down
        );
        let slow = TrackSpec {
            timeout: Duration::from_millis(100),
            ..track(Check::Script("sleep 5".into()))
        };
        let t0 = tokio::time::Instant::now();
        assert_eq!(probe(&http(), &slow).await, Probe::Down);
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn process_and_interface() {
        let me = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        let p = |c| async move { probe(&http(), &track(c)).await };
        assert_eq!(p(Check::Process(me.trim_end().into())).await, Probe::Up);
        assert_eq!(
            p(Check::Process("no-such-process-xyz".into())).await,
            Probe::Down
        );
        assert_eq!(p(Check::Interface("lo".into())).await, Probe::Up);
        assert_eq!(p(Check::Interface("nope0".into())).await, Probe::Down);
    }

    #[tokio::test]
    async fn http_refused_is_down() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        assert_eq!(
            probe(
                &http(),
                &track(Check::Http(format!("http://{addr}/healthz")))
            )
            .await,
            Probe::Down
        );
    }
}
