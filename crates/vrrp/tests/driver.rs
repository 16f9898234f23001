//! The driver loop against in-memory ports and paused tokio time: timers,
//! GARP bursts, VIP handling, tracking and shutdown, with no sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use stackd_common::config::ha::{Instance, Track};
use stackd_vrrp::driver::Driver;
use stackd_vrrp::notify::Notifier;
use stackd_vrrp::packet::{Advert, Auth, Version};
use stackd_vrrp::ports::Ports;
use stackd_vrrp::socket::Received;
use stackd_vrrp::state::{Params, VirtualRouter};
use stackd_vrrp::status::{InstanceStatus, Metrics, SharedStatus};
use stackd_vrrp::validate::Expect;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    fn announce(&self, count: u32) -> io::Result<()> {
        self.note(format!("garp x{count}"));
        Ok(())
    }
}

fn instance(track: Vec<Track>) -> Instance {
    Instance {
        name: "VI_1".into(),
        interface: "eth0".into(),
        virtual_router_id: 51,
        priority: 100,
        advert_int: Duration::from_millis(100),
        version: 3,
        auth_pass: None,
        virtual_ipaddress: vec!["192.0.2.88/24".parse().expect("net")],
        preempt: true,
        preempt_delay: Duration::ZERO,
        unicast_peers: vec![],
        unicast_src_ip: None,
        notify: None,
        notify_webhook: None,
        garp_master_repeat: 5,
        garp_master_delay: Duration::from_secs(5),
        track,
    }
}

struct Rig {
    log: Arc<Mutex<Vec<String>>>,
    tx: mpsc::Sender<Vec<u8>>,
    samples: mpsc::Sender<(usize, bool)>,
    status: SharedStatus,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(inst: Instance) -> Rig {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel(8);
    let (stx, srx) = mpsc::channel(8);
    let status: SharedStatus = Arc::new(Mutex::new(InstanceStatus {
        name: "VI_1".into(),
        interface: "eth0".into(),
        vrid: 51,
        version: 3,
        state: "INIT".into(),
        priority: 100,
        effective_priority: 100,
        master: None,
        vips: vec![],
        last_transition: None,
        adverts_sent: 0,
        adverts_received: 0,
        transitions: 0,
        rejected: Default::default(),
        tracks: vec![],
    }));
    let params = Params {
        version: Version::V3,
        priority: 100,
        adver_int: inst.advert_int,
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary: IpAddr::V4(ME),
    };
    let expect = Expect {
        version: Version::V3,
        vrid: 51,
        auth: None,
        adver_int: inst.advert_int,
        vips: vec![IpAddr::V4(VIP)],
        own: vec![IpAddr::V4(ME)],
    };
    let fake = Fake {
        log: log.clone(),
        rx: tokio::sync::Mutex::new(rx),
    };
    let d = Driver::new(
        inst,
        VirtualRouter::new(params),
        fake,
        expect,
        status.clone(),
        Metrics::default(),
        Notifier::new(stackd_common::http_client::HttpClient::new("t")),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(d.run(srx, stop.clone()));
    Rig {
        log,
        tx,
        samples: stx,
        status,
        stop,
        task,
    }
}

impl Rig {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }
    fn state(&self) -> String {
        self.status.lock().expect("status").state.clone()
    }
}

/// An IPv4 datagram carrying a v3 advert from 192.0.2.140.
fn datagram(priority: u8) -> Vec<u8> {
    let src = Ipv4Addr::new(192, 0, 2, 140);
    let dst = Ipv4Addr::new(224, 0, 0, 18);
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs: 10,
        addrs: vec![IpAddr::V4(VIP)],
        auth: Auth::None,
    };
    let body = a.encode(IpAddr::V4(src), IpAddr::V4(dst));
    let mut ip = vec![
        0x45,
        0xc0,
        0,
        (20 + body.len()) as u8,
        0,
        1,
        0,
        0,
        255,
        112,
        0,
        0,
    ];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&body);
    ip
}

async fn sleep(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn master_lifecycle_garp_bursts_preemption_and_shutdown() {
    let rig = start(instance(vec![]));
    sleep(1).await;
    assert_eq!(rig.take(), vec!["del vips"], "stale VIPs are cleaned first");
    sleep(400).await; // Master_Down_Interval 360.9 ms
    assert_eq!(rig.state(), "MASTER");
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

    // A higher priority advert: back to BACKUP, VIPs dropped, no more adverts.
    rig.tx.send(datagram(200)).await.expect("inject");
    sleep(50).await;
    assert_eq!(rig.state(), "BACKUP");
    assert_eq!(rig.take(), vec!["del vips"]);
    assert_eq!(
        rig.status.lock().expect("s").master,
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 140)))
    );
    // It goes silent: after Master_Down_Interval we take over again.
    sleep(400).await;
    assert_eq!(rig.state(), "MASTER");
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
    let t = Track {
        http: Some("http://127.0.0.1:1/".into()),
        fall: 1,
        rise: 1,
        ..Track::default()
    };
    let rig = start(instance(vec![t]));
    sleep(1000).await;
    assert_eq!(rig.state(), "FAULT", "no check result yet: wait");
    rig.samples.send((0, true)).await.expect("sample");
    sleep(400).await;
    assert_eq!(rig.state(), "MASTER");
    rig.take();
    rig.samples.send((0, false)).await.expect("sample");
    sleep(10).await;
    assert_eq!(rig.state(), "FAULT");
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
