//! The driver loop against in-memory ports and paused tokio time: timers,
//! GARP bursts, VIP handling, tracking and shutdown, with no sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use stackd_common::config::ha::InstanceSpec;
use stackd_common::config::Section;
use stackd_common::http_client::HttpClient;
use stackd_common::Config;
use stackd_vrrp::driver::{Driver, Reload};
use stackd_vrrp::notify::Notifier;
use stackd_vrrp::ports::Ports;
use stackd_vrrp::socket::Received;
use stackd_vrrp::state::State;
use stackd_vrrp::status::{InstanceLabels, Metrics, SharedStatus};
use stackd_vrrp::track::Probe;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod support;

const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 133);
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 88);

/// Records what the driver did; `rx` feeds it datagrams.
struct Fake {
    log: Arc<Mutex<Vec<String>>>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>,
}

impl Fake {
    fn note(&self, s: String) {
        self.log.lock().expect("log").push(s);
    }
}

impl Ports for Fake {
    fn source(&self) -> IpAddr {
        IpAddr::V4(ME)
    }
    fn send(&self, encode: &dyn Fn(IpAddr, IpAddr) -> Vec<u8>) -> io::Result<()> {
        let b = encode(IpAddr::V4(ME), IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)));
        self.note(format!("advert prio {}", b[2]));
        Ok(())
    }
    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<Received>> {
        Box::pin(async move {
            match self.rx.lock().await.recv().await {
                Some(d) => {
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    Ok(Received::V4 { len: n })
                }
                None => std::future::pending().await,
            }
        })
    }
    fn add_vips(&self) -> BoxFuture<'_, io::Result<()>> {
        self.note("add vips".into());
        Box::pin(async { Ok(()) })
    }
    fn del_vips(&self) -> BoxFuture<'_, io::Result<()>> {
        self.note("del vips".into());
        Box::pin(async { Ok(()) })
    }
    fn announce(&self, count: u32) {
        self.note(format!("garp x{count}"));
    }
    fn set_vips(&mut self, vips: Vec<ipnet::IpNet>, held: bool) -> BoxFuture<'_, io::Result<()>> {
        self.note(format!("set vips {vips:?} held {held}"));
        Box::pin(async { Ok(()) })
    }
}

/// The instance under test, from config text as an operator writes it.
fn instance(extra: &str) -> InstanceSpec {
    let text = format!(
        "[ha]\n[[ha.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nversion = 3\nadvert_int = \"100ms\"\nvirtual_ipaddress = [\"192.0.2.88/24\"]\n{extra}"
    );
    let loaded =
        Config::from_toml_str_for(&text, Path::new("t.toml"), Section::Ha).expect("valid [ha]");
    loaded.ha_spec.expect("spec").instances.remove(0)
}

struct Rig {
    log: Arc<Mutex<Vec<String>>>,
    tx: mpsc::Sender<Vec<u8>>,
    samples: mpsc::Sender<(usize, Probe)>,
    reload: mpsc::Sender<Reload>,
    status: SharedStatus,
    metrics: Metrics,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(spec: InstanceSpec) -> Rig {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel(8);
    let (stx, srx) = mpsc::channel(8);
    let fake = Fake {
        log: log.clone(),
        rx: tokio::sync::Mutex::new(rx),
    };
    let metrics = Metrics::default();
    let d = Driver::new(
        spec,
        fake,
        vec![IpAddr::V4(ME)],
        metrics.clone(),
        Notifier::new(HttpClient::new("t")),
    );
    let status = d.status();
    let reload = d.reloader();
    let stop = CancellationToken::new();
    let task = tokio::spawn(d.run(srx, stop.clone()));
    Rig {
        log,
        tx,
        samples: stx,
        reload,
        status,
        metrics,
        stop,
        task,
    }
}

impl Rig {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }
    fn state(&self) -> State {
        self.status.lock().expect("status").state
    }
    /// (notifications sent, transitions coalesced) so far.
    fn notices(&self) -> (u64, u64) {
        let l = InstanceLabels {
            vrrp_instance: "VI_1".into(),
        };
        (
            self.metrics.notifications.get_or_create(&l).get(),
            self.metrics.coalesced.get_or_create(&l).get(),
        )
    }
    fn transitions(&self) -> u64 {
        self.status.lock().expect("status").transitions
    }
}

/// An IPv4 datagram carrying a v3 advert from 192.0.2.140.
fn datagram(priority: u8) -> Vec<u8> {
    datagram_from(Ipv4Addr::new(192, 0, 2, 140), priority)
}

fn datagram_from(src: Ipv4Addr, priority: u8) -> Vec<u8> {
    support::v3_datagram(src, VIP, priority, 255)
}

async fn sleep(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn master_lifecycle_garp_bursts_preemption_and_shutdown() {
    let rig = start(instance(""));
    sleep(1).await;
    assert_eq!(rig.take(), vec!["del vips"], "stale VIPs are cleaned first");
    sleep(400).await; // Master_Down_Interval 360.9 ms
    assert_eq!(rig.state(), State::Master);
    let log = rig.take();
    assert_eq!(
        &log[..3],
        &["advert prio 100", "add vips", "garp x5"],
        "{log:?}"
    );
    assert!(log[3..].iter().all(|l| l == "advert prio 100"));
    sleep(5000).await;
    assert!(
        rig.take().contains(&"garp x5".to_owned()),
        "second GARP burst after garp_master_delay"
    );

    // A higher priority advert: back to BACKUP, no more adverts; the VIPs
    // stay RELEASE_LINGER (1 s) for the answers of what we accepted.
    rig.tx.send(datagram(200)).await.expect("inject");
    sleep(50).await;
    assert_eq!(rig.state(), State::Backup);
    assert_eq!(rig.take(), Vec::<String>::new());
    assert_eq!(
        rig.status.lock().expect("s").master,
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 140)))
    );
    // It goes silent: after Master_Down_Interval we take over again.
    sleep(400).await;
    assert_eq!(rig.state(), State::Master);
    rig.take();

    // SIGTERM as MASTER: priority 0, VIPs removed, loop ends.
    rig.stop.cancel();
    let log = rig.log.clone();
    tokio::time::timeout(Duration::from_secs(1), rig.task)
        .await
        .expect("stops")
        .expect("no panic");
    let log = std::mem::take(&mut *log.lock().expect("log"));
    assert_eq!(
        log,
        vec!["advert prio 0", "del vips", "del vips"],
        "{log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn tracking_holds_in_fault_then_joins() {
    let rig = start(instance(
        "track = [ { http = \"http://127.0.0.1:1/\", fall = 1, rise = 1 } ]",
    ));
    sleep(1000).await;
    assert_eq!(rig.state(), State::Fault, "no check result yet: wait");
    rig.samples.send((0, Probe::Up)).await.expect("sample");
    sleep(400).await;
    assert_eq!(rig.state(), State::Master);
    rig.take();
    rig.samples.send((0, Probe::Down)).await.expect("sample");
    sleep(10).await;
    assert_eq!(rig.state(), State::Fault);
    assert_eq!(rig.take(), vec!["advert prio 0", "del vips"]);
    let bad = [0u8; 3];
    rig.tx.send(bad.to_vec()).await.expect("inject");
    sleep(10).await;
    assert_eq!(
        rig.status.lock().expect("s").rejected.get("truncated"),
        Some(&1)
    );
    rig.stop.cancel();
}

/// Forges "I am 254" (we yield), then "254 leaves" (we take over after
/// Skew_Time), `pairs` times, `half` ms apart; returns (flips, sent, coalesced)
/// counted from just before the storm to 3 s after it.
async fn storm(half: u64, pairs: usize) -> (u64, u64, u64) {
    let rig = start(instance(""));
    sleep(3000).await;
    assert_eq!(rig.state(), State::Master);
    let (t0, (s0, c0)) = (rig.transitions(), rig.notices());
    let forger = Ipv4Addr::new(192, 0, 2, 66);
    for _ in 0..pairs {
        rig.tx
            .send(datagram_from(forger, 254))
            .await
            .expect("inject");
        sleep(half).await;
        rig.tx.send(datagram_from(forger, 0)).await.expect("inject");
        sleep(half).await;
    }
    sleep(3000).await; // the last state settles and is announced
    assert_eq!(rig.state(), State::Master);
    let (s1, c1) = rig.notices();
    rig.stop.cancel();
    (rig.transitions() - t0, s1 - s0, c1 - c0)
}

#[tokio::test(start_paused = true)]
async fn forged_flapping_is_announced_at_most_once_a_second() {
    // Both states last 300+ ms (longer than `settle`): only the rate bound
    // holds the notifications back. 20 s of storm, 100 flips.
    let (flips, sent, coalesced) = storm(400, 25).await;
    assert!(flips >= 48, "the forgery did flip the state: {flips}");
    assert!(
        (5..=22).contains(&sent),
        "{sent} notifications for {flips} flips in 20 s"
    );
    assert_eq!(
        sent + coalesced,
        flips,
        "every transition is announced or counted"
    );
}

#[tokio::test(start_paused = true)]
async fn fast_flapping_announces_only_what_lasts() {
    // MASTER lasts 90 ms each time (less than one advert interval): none of
    // those is announced, and the BACKUPs repeat what was announced last.
    let (flips, sent, coalesced) = storm(150, 33).await;
    assert!(flips >= 60, "{flips}");
    assert!(sent <= 2, "{sent} notifications for {flips} flips");
    assert_eq!(sent + coalesced, flips);
}

#[tokio::test(start_paused = true)]
async fn a_quick_flap_back_announces_nothing() {
    let rig = start(instance(""));
    sleep(3000).await;
    let (sent, _) = rig.notices();
    // BACKUP for 60 ms, then MASTER again: it did not last.
    rig.tx.send(datagram(254)).await.expect("inject");
    sleep(20).await;
    rig.tx.send(datagram(0)).await.expect("inject");
    sleep(3000).await;
    assert_eq!(rig.state(), State::Master);
    assert_eq!(rig.notices(), (sent, 2));
    rig.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn interval_zero_and_strangers_in_unicast_mode_change_nothing() {
    let rig = start(instance("unicast_peers = [\"192.0.2.135\"]"));
    sleep(1000).await;
    assert_eq!(rig.state(), State::Master);
    let before = rig.transitions();
    let mut zero = datagram_from(Ipv4Addr::new(192, 0, 2, 135), 254);
    zero[24] = 0; // Max Adver Int high bits
    zero[25] = 0; // ... and low byte: 0 centiseconds
    zero[26] = 0;
    zero[27] = 0;
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 135));
    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    let sum = stackd_vrrp::checksum::with_pseudo_header(src, dst, &zero[20..]);
    zero[26..28].copy_from_slice(&sum.to_be_bytes());
    for _ in 0..20 {
        rig.tx.send(zero.clone()).await.expect("inject");
        rig.tx
            .send(datagram_from(Ipv4Addr::new(192, 0, 2, 66), 254))
            .await
            .expect("inject");
        sleep(50).await;
    }
    assert_eq!(rig.state(), State::Master);
    assert_eq!(rig.transitions(), before);
    let st = rig.status.lock().expect("s").clone();
    assert_eq!(st.rejected.get("bad_interval"), Some(&20));
    assert_eq!(st.rejected.get("not_a_peer"), Some(&20));
    // The configured peer with a sane advert is still heard.
    rig.tx
        .send(datagram_from(Ipv4Addr::new(192, 0, 2, 135), 254))
        .await
        .expect("inject");
    sleep(10).await;
    assert_eq!(rig.state(), State::Backup);
    rig.stop.cancel();
}

/// Real time: the STOP webhook reaches a loopback server before `run` returns.
#[tokio::test]
async fn the_stop_notification_is_delivered_before_exit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut req = Vec::new();
                while !req.ends_with(b"}") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .expect("seen")
                    .push(String::from_utf8_lossy(&req).into_owned());
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            });
        }
    });
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_tx, rx) = mpsc::channel(8);
    let (_stx, srx) = mpsc::channel(8);
    let fake = Fake {
        log,
        rx: tokio::sync::Mutex::new(rx),
    };
    let notifier = Notifier {
        webhook: Some(url),
        ..Notifier::new(HttpClient::new("t"))
    };
    // Priority 255: MASTER at once.
    let spec = instance("").clone();
    let spec = stackd_common::config::ha::InstanceSpec {
        priority: stackd_common::config::ha::Priority::new(255).expect("255"),
        ..spec
    };
    let d = Driver::new(spec, fake, vec![], Metrics::default(), notifier);
    let stop = CancellationToken::new();
    let task = tokio::spawn(d.run(srx, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run returns")
        .expect("no panic");
    let got = got.lock().expect("got").clone();
    assert!(
        got.last().is_some_and(|r| r.contains("\"state\":\"STOP\"")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|r| r.contains("\"state\":\"MASTER\"")),
        "{got:#?}"
    );
}

fn has(log: &[String], what: &str) -> bool {
    log.iter().any(|l| l == what)
}

/// The tracked proxy comes up, the instance becomes MASTER (its log
/// taken), then the proxy reports "draining".
async fn master_then_draining(rig: &Rig) {
    rig.samples.send((0, Probe::Up)).await.expect("sample");
    sleep(500).await;
    assert_eq!(rig.state(), State::Master);
    rig.take();
    rig.samples
        .send((0, Probe::Draining))
        .await
        .expect("sample");
}

#[tokio::test(start_paused = true)]
async fn a_draining_proxy_hands_the_vip_over_make_before_break() {
    let rig = start(instance(
        "track = [ { http = \"http://127.0.0.1:1/\", fall = 3, rise = 1 } ]",
    ));
    // "draining": FAULT at once (no fall x interval), priority 0 on the
    // wire, but the VIPs stay: the proxy still serves.
    master_then_draining(&rig).await;
    sleep(10).await;
    assert_eq!(rig.state(), State::Fault);
    let log = rig.take();
    assert_eq!(log, vec!["advert prio 0"], "{log:?}");
    // The peer takes over (its advert): the VIPs go RELEASE_LINGER later.
    sleep(60).await;
    rig.tx.send(datagram(99)).await.expect("inject");
    sleep(900).await;
    assert!(!has(&rig.take(), "del vips"), "kept while answers drain");
    sleep(200).await;
    assert_eq!(rig.take(), vec!["del vips"]);
    // The proxy is gone, then back: BACKUP, and it preempts as usual.
    rig.samples.send((0, Probe::Down)).await.expect("sample");
    rig.samples.send((0, Probe::Up)).await.expect("sample");
    sleep(10).await;
    assert_eq!(rig.state(), State::Backup);
    rig.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn with_no_peer_a_handover_releases_after_master_down_or_when_the_proxy_is_gone() {
    let rig = start(instance(
        "track = [ { http = \"http://127.0.0.1:1/\", fall = 3, rise = 1 } ]",
    ));
    master_then_draining(&rig).await;
    sleep(300).await;
    assert!(!has(&rig.take(), "del vips"));
    sleep(100).await; // Master_Down_Interval: 360.9 ms
    assert_eq!(rig.take(), vec!["del vips"]);
    // Again, and this time the proxy exits (refused) before anyone took over.
    master_then_draining(&rig).await;
    sleep(50).await;
    rig.samples.send((0, Probe::Down)).await.expect("sample");
    sleep(10).await;
    assert_eq!(rig.take(), vec!["advert prio 0", "del vips"]);
    rig.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_lower_priority_master_gets_an_advert_and_gratuitous_arps_once_per_interval() {
    let rig = start(instance(""));
    sleep(500).await;
    assert_eq!(rig.state(), State::Master);
    rig.take();
    for _ in 0..5 {
        rig.tx.send(datagram(50)).await.expect("inject");
        sleep(5).await;
    }
    let log = rig.take();
    assert_eq!(
        log,
        vec!["advert prio 100", "garp x5"],
        "one answer for 5 adverts in 25 ms"
    );
    sleep(1100).await;
    let log = rig.take();
    assert!(has(&log, "garp x5"), "again past the ARP locktime: {log:?}");
    sleep(1000).await;
    assert!(has(&rig.take(), "garp x1"), "garp_master_refresh (2s)");
    rig.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_reload_changes_the_priority_on_the_wire_and_keeps_the_vips() {
    let rig = start(instance(""));
    sleep(500).await;
    assert_eq!(rig.state(), State::Master);
    rig.take();
    let (_stx, samples) = mpsc::channel(8);
    let new = instance("").clone();
    let new = InstanceSpec {
        priority: stackd_common::config::ha::Priority::new(150).expect("150"),
        ..new
    };
    rig.reload
        .send(Reload {
            spec: new,
            samples,
            notifier: Notifier::new(HttpClient::new("t")),
        })
        .await
        .expect("reload");
    sleep(150).await;
    let log = rig.take();
    assert_eq!(rig.state(), State::Master);
    assert!(has(&log, "advert prio 150"), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("vips")), "{log:?}");
    assert_eq!(rig.status.lock().expect("s").priority, 150);
    rig.stop.cancel();
}
