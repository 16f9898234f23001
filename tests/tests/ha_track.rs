//! Tracking in namespaces: a tracked HTTP check (a tiny server we start and
//! stop inside px1) decides who holds the VIP; startup order does not
//! matter; weights lower the priority; the notify script sees every change.

use std::time::Duration;

use stackd_e2e::ha::*;
use stackd_testkit::poll;

const S: fn(u64) -> Duration = Duration::from_secs;

/// A one-line HTTP server answering 200 to everything, inside `host`.
fn http_server(ha: &Ha, host: &str) -> u32 {
    let perl = r#"use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:18080", Listen => 16, ReuseAddr => 1) or die "listen: $!"; while (my $c = $s->accept) { my $b; $c->sysread($b, 4096); $c->syswrite("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"); close $c }"#;
    ha.lab
        .spawn(ha.lab.command(host, &["perl", "-e", perl]))
        .expect("perl http server")
}

fn track(weight: u16) -> String {
    format!("track = [ {{ http = \"http://127.0.0.1:18080/healthz\", interval = \"100ms\", timeout = \"300ms\", fall = 2, rise = 2, weight = {weight} }} ]\n")
}

#[test]
fn tracked_http_check_decides_and_startup_order_does_not_matter() {
    let ha = Ha::new("hat");
    let notify = ha.dir.join("notify.sh");
    let notes = ha.dir.join("notes.txt");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notes.display()),
    )
    .expect("notify script");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&notify)
        .status()
        .expect("chmod");
    let extra = format!("{}notify = \"{}\"\n", track(0), notify.display());

    // ha starts before the proxy it tracks: px1 must wait in FAULT, not grab the VIP.
    ha.stackd("px1", &ha_config(100, 3, &extra));
    ha.stackd("px2", &ha_config(99, 3, ""));
    assert!(
        poll(S(5), || ha.only("px2")).is_some(),
        "px2 is master while px1's check is down"
    );
    assert!(
        poll(S(3), || ha.status("px1").contains("\"state\": \"FAULT\"")).is_some(),
        "{}",
        ha.status("px1")
    );

    // The proxy comes up: px1 rises, joins and preempts.
    let server = http_server(&ha, "px1");
    let took = poll(S(5), || ha.only("px1")).expect("px1 takes over once its check rises");
    println!("tracked check up -> px1 MASTER: {took:?}");
    assert!(ha.status("px1").contains("\"health\": \"up\""));
    // keepalived's notify convention: INSTANCE <name> <state> <priority>. A
    // state is announced once it has lasted, at most once a second.
    let noted = |what: &str| {
        poll(S(3), || {
            std::fs::read_to_string(&notes)
                .unwrap_or_default()
                .contains(what)
        })
        .is_some()
    };
    assert!(
        noted("INSTANCE VI_1 MASTER 100"),
        "{}",
        std::fs::read_to_string(&notes).unwrap_or_default()
    );

    // The proxy dies: px1 goes FAULT with a priority-0 advert; px2 takes over fast.
    ha.lab.signal(server, "KILL").expect("stop http server");
    let took = poll(S(5), || ha.only("px2")).expect("px2 takes over when px1's check fails");
    println!("tracked HTTP failure (fall 2 x 100ms) -> VIP on px2: {took:?}");
    assert!(took < S(3), "{took:?}");
    assert!(ha.status("px1").contains("\"state\": \"FAULT\""));
    assert!(ha.status("px1").contains("tracked check failed"));

    assert!(
        noted("INSTANCE VI_1 FAULT 100"),
        "{}",
        std::fs::read_to_string(&notes).unwrap_or_default()
    );
}

#[test]
fn weight_lowers_priority_and_lets_the_backup_preempt() {
    let ha = Ha::new("haw");
    let server = http_server(&ha, "px1");
    ha.stackd("px1", &ha_config(100, 3, &track(50)));
    ha.stackd("px2", &ha_config(99, 3, ""));
    assert!(poll(S(5), || ha.only("px1")).is_some());
    ha.lab.signal(server, "KILL").expect("stop http server");
    let took = poll(S(5), || ha.only("px2")).expect("px2 (99) preempts px1 (100 - 50)");
    println!("weight 50 tracked failure -> VIP on px2: {took:?}");
    assert!(
        ha.status("px1").contains("\"effective_priority\": 50"),
        "{}",
        ha.status("px1")
    );
    assert!(ha
        .metrics("px1")
        .contains("stackd_vrrp_effective_priority{vrrp_instance=\"VI_1\"} 50"));
}
