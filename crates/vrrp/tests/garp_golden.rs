//! Gratuitous ARP as keepalived 2.2.7 sends it (tests/vectors/keepalived-garp.txt,
//! `tcpdump -e` on the client): our frames carry exactly the fields tcpdump
//! printed, and the burst pattern (5 at once, 5 more after 5 s) is our default.

use std::net::Ipv4Addr;
use std::time::Duration;

use stackd_vrrp::garp::arp_announce;

struct Seen {
    at: f64,
    src_mac: [u8; 6],
    line: String,
}

fn seen() -> Vec<Seen> {
    include_str!("vectors/keepalived-garp.txt")
        .lines()
        // Only the gratuitous ones: the capture also holds the client's own ARP.
        .filter(|l| l.contains("ethertype ARP") && l.contains("tell 192.0.2.88,"))
        .map(|l| {
            let mut f = l.split_whitespace();
            let ts = f.next().expect("timestamp");
            let mac = f.next().expect("mac");
            let secs: Vec<f64> = ts.split(':').map(|p| p.parse().expect("time")).collect();
            let mut src_mac = [0u8; 6];
            for (o, h) in src_mac.iter_mut().zip(mac.split(':')) {
                *o = u8::from_str_radix(h, 16).expect("hex");
            }
            Seen {
                at: secs[0] * 3600.0 + secs[1] * 60.0 + secs[2],
                src_mac,
                line: l.to_owned(),
            }
        })
        .collect()
}

/// What `tcpdump -n -e` prints for an Ethernet ARP frame.
fn tcpdump_line(f: &[u8]) -> String {
    let mac = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string();
    assert_eq!(u16::from_be_bytes([f[12], f[13]]), 0x0806);
    assert_eq!(&f[14..20], &[0, 1, 0x08, 0x00, 6, 4], "Ethernet/IPv4 ARP");
    let op = match u16::from_be_bytes([f[20], f[21]]) {
        1 => "Request",
        2 => "Reply",
        _ => "?",
    };
    format!(
        "{} > {}, ethertype ARP (0x0806), length {}: {op} who-has {} ({}) tell {}, length 28",
        mac(&f[6..12]),
        mac(&f[0..6]),
        f.len(),
        ip(&f[38..42]),
        mac(&f[32..38]),
        ip(&f[28..32]),
    )
}

#[test]
fn our_frames_print_like_keepalived_frames() {
    let all = seen();
    assert!(all.len() >= 80, "{} frames in the vectors", all.len());
    let vip = Ipv4Addr::new(192, 0, 2, 88);
    for s in &all {
        let ours = arp_announce(s.src_mac, vip);
        let printed = tcpdump_line(&ours);
        assert!(
            s.line.ends_with(&printed),
            "keepalived: {}\nours:       {printed}",
            s.line
        );
    }
}

#[test]
fn bursts_are_five_then_five_after_five_seconds() {
    let all = seen();
    // Group into takeovers: frames more than 8 s apart start a new one.
    let mut takeovers: Vec<Vec<f64>> = Vec::new();
    for s in &all {
        match takeovers.last_mut() {
            Some(t) if s.at - t[0] < 8.0 => t.push(s.at),
            _ => takeovers.push(vec![s.at]),
        }
    }
    let toml = "[ha]\n[[ha.instance]]\nname = \"a\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nvirtual_ipaddress = [\"192.0.2.88/24\"]\n";
    let cfg =
        stackd_common::Config::from_toml_str(toml, std::path::Path::new("t.toml")).expect("config");
    let inst = &cfg.ha.expect("ha").instance[0];
    assert_eq!(
        (inst.garp_master_repeat, inst.garp_master_delay),
        (5, Duration::from_secs(5)),
        "our defaults are keepalived's"
    );
    let mut checked = 0;
    for t in takeovers.iter().filter(|t| t.len() == 10) {
        let first = t[0];
        assert!(t[..5].iter().all(|x| x - first < 0.01), "5 at once: {t:?}");
        let gap = t[5] - first;
        assert!(
            (gap - 5.0).abs() < 0.05,
            "second burst after 5 s, got {gap}"
        );
        assert!(t[5..].iter().all(|x| x - t[5] < 0.01));
        checked += 1;
    }
    assert!(checked >= 5, "{checked} complete takeovers");
}
