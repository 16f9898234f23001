//! The tracking probes: one task per `[[ha.instance.track]]` entry, feeding
//! raw ok/fail results to the driver, which owns the hysteresis
//! ([`crate::track`]). A probe that times out counts as a failure.

use std::time::Duration;

use stackd_common::config::ha::Track;
use stackd_common::http_client::HttpClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One probe result: (index of the track entry, ok).
pub type Sample = (usize, bool);

/// Runs one probe of `t`.
pub async fn probe(http: &HttpClient, t: &Track) -> bool {
    let work = async {
        if let Some(url) = &t.http {
            http.get(url, t.timeout)
                .await
                .is_ok_and(|r| r.status.is_success())
        } else if let Some(name) = &t.process {
            process_running(name)
        } else if let Some(cmd) = &t.script {
            script_ok(cmd).await
        } else if let Some(ifname) = &t.interface {
            crate::iface::link_up(ifname)
        } else {
            false
        }
    };
    tokio::time::timeout(t.timeout, work).await.unwrap_or(false)
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
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    child.await.is_ok_and(|s| s.success())
}

/// Probes `t` every `t.interval` until `stop`.
pub async fn run(
    index: usize,
    t: Track,
    http: HttpClient,
    out: mpsc::Sender<Sample>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(t.interval.max(Duration::from_millis(10)));
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
    use super::*;

    fn http() -> HttpClient {
        HttpClient::new("stackd-ha-test")
    }

    fn track() -> Track {
        Track {
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
            fall: 1,
            rise: 1,
            ..Track::default()
        }
    }

    #[tokio::test]
    async fn script_exit_code_and_timeout() {
        assert!(
            probe(
                &http(),
                &Track {
                    script: Some("exit 0".into()),
                    ..track()
                }
            )
            .await
        );
        assert!(
            !probe(
                &http(),
                &Track {
                    script: Some("exit 3".into()),
                    ..track()
                }
            )
            .await
        );
        let slow = Track {
            script: Some("sleep 5".into()),
            timeout: Duration::from_millis(100),
            ..track()
        };
        let t0 = tokio::time::Instant::now();
        assert!(!probe(&http(), &slow).await);
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn process_and_interface() {
        let me = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        assert!(
            probe(
                &http(),
                &Track {
                    process: Some(me.trim_end().into()),
                    ..track()
                }
            )
            .await
        );
        assert!(
            !probe(
                &http(),
                &Track {
                    process: Some("no-such-process-xyz".into()),
                    ..track()
                }
            )
            .await
        );
        assert!(
            probe(
                &http(),
                &Track {
                    interface: Some("lo".into()),
                    ..track()
                }
            )
            .await
        );
        assert!(
            !probe(
                &http(),
                &Track {
                    interface: Some("nope0".into()),
                    ..track()
                }
            )
            .await
        );
    }

    #[tokio::test]
    async fn http_refused_is_down() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        assert!(
            !probe(
                &http(),
                &Track {
                    http: Some(format!("http://{addr}/healthz")),
                    ..track()
                }
            )
            .await
        );
    }
}
