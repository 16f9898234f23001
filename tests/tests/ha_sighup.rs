//! SIGHUP to `stackd ha` (issue #13): an unchanged file, a changed one (a
//! new priority and preempt delay) and a broken one, while a watcher looks
//! every 20 ms whether px1 still holds the VIP. The VIP never leaves, the
//! new priority is seen on the wire (tcpdump on the client), and the broken
//! file is logged and changes nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // blocking tests measure with the std clock

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stackd_e2e::ha::{ha_config, Ha, VIP};
use stackd_testkit::process::{signal, Signal};
use stackd_testkit::{poll, wait_until};

/// Starts tcpdump for VRRP on the client; the lines go to `vrrp.txt`.
fn capture_vrrp(ha: &Ha) -> std::path::PathBuf {
    let out = ha.dir.join("vrrp.txt");
    let err = ha.dir.join("vrrp.err");
    let mut cmd = ha.lab.command(
        "cl",
        &["tcpdump", "-i", "eth0", "-n", "-l", "-U", "ip proto 112"],
    );
    cmd.stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err).unwrap()));
    ha.lab.spawn(cmd).unwrap();
    wait_until("tcpdump listening", Duration::from_secs(5), || {
        std::fs::read_to_string(&err)
            .unwrap_or_default()
            .contains("listening on")
    });
    out
}

#[test]
fn sighup_reloads_ha_and_the_vip_never_leaves() {
    let ha = Ha::new("zdhup");
    let px1 = ha.stackd("px1", &ha_config(100, 3, ""));
    ha.stackd("px2", &ha_config(99, 3, ""));
    poll(Duration::from_secs(10), || ha.only("px1")).expect("px1 holds the VIP");
    let wire = capture_vrrp(&ha);

    let stop = Arc::new(AtomicBool::new(false));
    let (missed, looks) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let ns = ha.lab.ns("px1");
    let watcher = {
        let (stop, missed, looks) = (stop.clone(), missed.clone(), looks.clone());
        std::thread::spawn(move || {
            stackd_testkit::netns::enter_thread(&ns).unwrap();
            while !stop.load(Ordering::Relaxed) {
                // The VIP is on px1 exactly when a socket can bind it there.
                if std::net::UdpSocket::bind((VIP, 0)).is_err() {
                    missed.fetch_add(1, Ordering::Relaxed);
                }
                looks.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let file = ha.dir.join("px1.toml");
    let reloads = |n: usize| ha.log("px1").matches("config reloaded").count() >= n;

    // 1. Unchanged.
    signal(px1, Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    // 2. A new priority. (A VIP list changes on both nodes: with the lists
    // differing, each drops the other's adverts, RFC 5798 §7.1; the driver
    // test `a_reload_changes_the_priority_on_the_wire_and_keeps_the_vips`
    // and `netlink::Vips::replace` keep the VIPs that stay.)
    std::fs::write(&file, ha_config(150, 3, "preempt_delay = \"1s\"\n")).unwrap();
    signal(px1, Signal::SIGHUP);
    wait_until("the reload", Duration::from_secs(5), || reloads(1));
    let on_wire = poll(Duration::from_secs(3), || {
        std::fs::read_to_string(&wire)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with_any_time("192.0.2.133 >") && l.contains("prio 150"))
    });
    // 3. Broken.
    std::fs::write(
        &file,
        "[ha]\n[[ha.instance]]\nname = \"VI_1\"\npriority = 999\n",
    )
    .unwrap();
    signal(px1, Signal::SIGHUP);
    wait_until("the rejection", Duration::from_secs(5), || {
        ha.log("px1").contains("reload rejected")
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let status = ha.status("px1");
    let (missed, looks) = (
        missed.load(Ordering::Relaxed),
        looks.load(Ordering::Relaxed),
    );
    println!(
        "SIGHUP to ha (unchanged, priority 100 -> 150 and preempt_delay, broken file): VIP missing from px1 in {missed} of {looks} looks; priority 150 on the wire after the reload: {:?}",
        on_wire
    );
    assert_eq!(missed, 0, "the VIP left px1 during a reload");
    assert!(looks > 50);
    assert!(
        on_wire.is_some(),
        "the new priority must be seen on the wire"
    );
    assert!(status.contains("\"priority\": 150"), "{status}");
    assert!(
        ha.log("px1").contains("priority"),
        "the broken file's problem is logged"
    );
    assert!(ha.only("px1"));
}

trait StartsAfterTime {
    fn starts_with_any_time(&self, what: &str) -> bool;
}

impl StartsAfterTime for str {
    /// tcpdump prints "HH:MM:SS.ffffff IP <src> > <dst>: ..."
    fn starts_with_any_time(&self, what: &str) -> bool {
        self.split_once(" IP ")
            .is_some_and(|(_, rest)| rest.starts_with(what))
    }
}
