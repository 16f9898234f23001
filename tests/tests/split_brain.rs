//! A split brain healed both ways (issue #13): VRRP between px1 and px2 is
//! cut (each host blackholes the other's address with strict reverse-path
//! filtering), both become MASTER, the client's
//! ARP entry for the VIP is pointed at the one that will lose, and the cut
//! is healed. The winner answers the loser's lower-priority advert with an
//! advert and gratuitous ARPs (again past the 1 s ARP locktime, and every
//! `garp_master_refresh`): the client's entry must name the winner's MAC
//! within 3 s. First px1 wins (100 over 99), then, after px1 is reloaded
//! to priority 50 during a second split, px2 wins.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::disallowed_methods)] // blocking tests measure with the std clock

use std::time::{Duration, Instant};

use stackd_e2e::ha::{ha_config, Ha, VIP};
use stackd_testkit::poll;
use stackd_testkit::process::{signal, Signal};

/// Cuts (or heals) VRRP between px1 and px2, and nothing else: each host
/// routes the other's address into a blackhole with strict reverse-path
/// filtering, so the other's adverts (multicast included) fail the source
/// check on input. The client still hears both.
fn vrrp_cut(ha: &Ha, cut: bool) {
    for (host, other) in [("px1", "192.0.2.135/32"), ("px2", "192.0.2.133/32")] {
        let run = |args: &[&str]| {
            let out = ha.lab.exec(host, args).unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"]);
        run(&["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=1"]);
        let verb = if cut { "add" } else { "del" };
        run(&["ip", "route", verb, "blackhole", other]);
    }
}

/// The MAC the client's ARP entry for the VIP names.
fn client_arp(ha: &Ha) -> String {
    let out = ha
        .lab
        .exec("cl", &["ip", "neigh", "show", VIP, "dev", "eth0"])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or("")
        .to_owned()
}

/// Splits, points the client at `loser`, heals; returns how long until the
/// client's entry names `winner`.
fn split_and_heal(ha: &Ha, winner: &str, loser: &str, during: impl FnOnce()) -> Option<Duration> {
    vrrp_cut(ha, true);
    poll(Duration::from_secs(5), || {
        ha.has_vip("px1") && ha.has_vip("px2")
    })
    .expect("split brain: both hold the VIP");
    during();
    std::thread::sleep(Duration::from_millis(300));
    let wrong = ha.mac(loser);
    let out = ha
        .lab
        .exec(
            "cl",
            &[
                "ip",
                "neigh",
                "replace",
                VIP,
                "lladdr",
                &wrong,
                "dev",
                "eth0",
                "nud",
                "reachable",
            ],
        )
        .unwrap();
    assert!(out.status.success());
    assert_eq!(client_arp(ha), wrong);
    let t = Instant::now();
    vrrp_cut(ha, false);
    let right = ha.mac(winner);
    poll(Duration::from_secs(6), || client_arp(ha) == right).map(|_| t.elapsed())
}

#[test]
fn after_a_split_brain_heals_the_client_follows_the_real_master_within_3s() {
    let ha = Ha::new("zdsplit");
    let px1 = ha.stackd("px1", &ha_config(100, 3, ""));
    ha.stackd("px2", &ha_config(99, 3, ""));
    poll(Duration::from_secs(10), || ha.only("px1")).expect("px1 holds the VIP");
    // The client has an entry for the VIP (as a router in front would).
    let _ = ha.lab.reachable("cl", VIP);

    let first = split_and_heal(&ha, "px1", "px2", || {});
    let file = ha.dir.join("px1.toml");
    let second = split_and_heal(&ha, "px2", "px1", || {
        std::fs::write(&file, ha_config(50, 3, "")).unwrap();
        signal(px1, Signal::SIGHUP);
    });
    let settled = poll(Duration::from_secs(3), || ha.only("px2"));
    println!(
        "split brain healed: client ARP on the real master after {:?} (px1 won) and {:?} (px2 won, px1 reloaded to 50); VIP only on px2 afterwards: {}",
        first,
        second,
        settled.is_some()
    );
    for took in [first, second] {
        let took = took.expect("the client's ARP entry never named the real master");
        assert!(took <= Duration::from_secs(3), "{took:?}");
    }
    assert!(settled.is_some(), "the loser let the VIP go");
}
