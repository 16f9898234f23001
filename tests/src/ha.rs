//! The VRRP scenarios' fixture: a namespace lab with px1, px2 and a client
//! cl, `stackd ha` or keepalived started on the proxies, and what the tests
//! look at (who holds the VIP, `/status`, `/metrics`, ARP on the wire).
//! Everything is torn down by `Lab`'s Drop, even on panic.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use stackd_vrrp::packet::{Advert, Auth, Version};

pub use stackd_testkit::netns::Lab;
use stackd_testkit::{require_root, stackd_bin};

pub const VIP: &str = "192.0.2.88";

/// A lab with px1 (.133), px2 (.135) and a client cl (.10); a scratch dir.
pub struct Ha {
    pub lab: Lab,
    pub dir: PathBuf,
}

impl Ha {
    pub fn new(tag: &str) -> Ha {
        require_root();
        let _ = stackd_testkit::netns::cleanup_stale(tag);
        let mut lab = Lab::new(tag).expect("bridge namespace");
        lab.add_host("px1", "192.0.2.133/24").expect("px1");
        lab.add_host("px2", "192.0.2.135/24").expect("px2");
        lab.add_host("cl", "192.0.2.10/24").expect("cl");
        let dir = std::env::temp_dir().join(lab.prefix().trim_end_matches('-'));
        fs::create_dir_all(&dir).expect("scratch dir");
        Ha { lab, dir }
    }

    /// Starts `stackd ha` on `host` with an `[ha]` table; returns its PID.
    pub fn stackd(&self, host: &str, ha_toml: &str) -> u32 {
        self.stackd_as(host, ha_toml, &[])
    }

    /// [`Ha::stackd`] started through `wrapper` (e.g. `setpriv ... --`), so
    /// it can run as another user with chosen capabilities.
    pub fn stackd_as(&self, host: &str, ha_toml: &str, wrapper: &[&str]) -> u32 {
        let cfg = self.dir.join(format!("{host}.toml"));
        fs::write(&cfg, ha_toml).expect("write config");
        let log = fs::File::create(self.dir.join(format!("{host}.log"))).expect("log file");
        let bin = stackd_bin().display().to_string();
        let mut args = wrapper.to_vec();
        args.extend([
            bin.as_str(),
            "--log-level",
            "info,stackd_vrrp=debug",
            "ha",
            "--config",
        ]);
        let mut cmd = self.lab.command(host, &args);
        cmd.arg(&cfg)
            .stdout(Stdio::from(log.try_clone().expect("dup")))
            .stderr(Stdio::from(log));
        self.lab.spawn(cmd).expect("spawn stackd")
    }

    /// Starts keepalived 2.x in the foreground on `host`; returns its PID.
    pub fn keepalived(&self, host: &str, conf: &str) -> u32 {
        let c = self.dir.join(format!("{host}-keepalived.conf"));
        fs::write(&c, conf).expect("write keepalived.conf");
        let d = self.dir.display().to_string();
        let log = fs::File::create(self.dir.join(format!("{host}-keepalived.log"))).expect("log");
        let mut cmd = self
            .lab
            .command(host, &["keepalived", "-n", "-l", "-D", "--vrrp", "-f"]);
        cmd.arg(&c)
            .args([
                "-p",
                &format!("{d}/{host}-k.pid"),
                "-r",
                &format!("{d}/{host}-kv.pid"),
                "-c",
                &format!("{d}/{host}-kc.pid"),
            ])
            .stdout(Stdio::from(log.try_clone().expect("dup")))
            .stderr(Stdio::from(log));
        self.lab.spawn(cmd).expect("spawn keepalived")
    }

    pub fn log(&self, host: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{host}.log"))).unwrap_or_default()
    }

    /// Whether `host` has the VIP on eth0.
    pub fn has_vip(&self, host: &str) -> bool {
        self.lab
            .exec(host, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/")))
            .unwrap_or(false)
    }

    /// `/status` of the stackd on `host` (admin on 127.0.0.1:9091).
    pub fn status(&self, host: &str) -> String {
        self.lab
            .exec(
                host,
                &["curl", "-s", "-m", "2", "http://127.0.0.1:9091/status"],
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// `/metrics` of the stackd on `host`.
    pub fn metrics(&self, host: &str) -> String {
        self.lab
            .exec(
                host,
                &["curl", "-s", "-m", "2", "http://127.0.0.1:9091/metrics"],
            )
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// MAC of `host`'s eth0.
    pub fn mac(&self, host: &str) -> String {
        self.lab
            .exec(host, &["cat", "/sys/class/net/eth0/address"])
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    /// Exactly one of px1/px2 holds the VIP, and it is `host`.
    pub fn only(&self, host: &str) -> bool {
        let other = if host == "px1" { "px2" } else { "px1" };
        self.has_vip(host) && !self.has_vip(other)
    }

    /// Sends each of `packets` as IP protocol 112 from cl to `dst` with
    /// `ttl`, waiting `gap` between them and going through the list `rounds`
    /// times: one perl process with a raw socket, so the timing is the
    /// packets', not process starts'.
    pub fn inject(&self, dst: &str, ttl: u8, packets: &[Vec<u8>], gap: Duration, rounds: usize) {
        let hex: Vec<String> = packets
            .iter()
            .map(|p| p.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        let perl = r#"use Socket; use Time::HiRes qw(sleep);
            my ($dst, $ttl, $gap, $rounds, @pkts) = @ARGV;
            socket(my $s, PF_INET, SOCK_RAW, 112) or die "socket: $!";
            setsockopt($s, IPPROTO_IP, IP_TTL, pack("i", $ttl)) or die "ttl: $!";
            my $to = sockaddr_in(0, inet_aton($dst));
            for (1..$rounds) { for my $p (@pkts) {
                send($s, pack("H*", $p), 0, $to) or die "send: $!"; sleep($gap);
            } }"#;
        let (ttl, gap) = (ttl.to_string(), format!("{:.3}", gap.as_secs_f64()));
        let rounds = rounds.to_string();
        let mut args = vec!["perl", "-e", perl, dst, &ttl, &gap, &rounds];
        args.extend(hex.iter().map(String::as_str));
        let out = self.lab.exec("cl", &args).expect("perl");
        assert!(
            out.status.success(),
            "inject: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One value of `/metrics` on `host`, e.g.
    /// `stackd_vrrp_rejected_packets_total{vrrp_instance="VI_1",reason="bad_ttl"}`.
    pub fn metric(&self, host: &str, series: &str) -> Option<f64> {
        self.metrics(host)
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    /// Starts tcpdump for ARP on cl's eth0, writing to a file; waits until it listens.
    pub fn capture_arp(&self) -> PathBuf {
        let out = self.dir.join("arp.txt");
        let err = self.dir.join("arp.err");
        let mut cmd = self.lab.command(
            "cl",
            &["tcpdump", "-i", "eth0", "-n", "-e", "-l", "-U", "arp"],
        );
        cmd.stdout(Stdio::from(fs::File::create(&out).expect("arp.txt")))
            .stderr(Stdio::from(fs::File::create(&err).expect("arp.err")));
        self.lab.spawn(cmd).expect("tcpdump");
        stackd_testkit::wait_until("tcpdump listening", Duration::from_secs(5), || {
            fs::read_to_string(&err)
                .unwrap_or_default()
                .contains("listening on")
        });
        out
    }
}

impl Drop for Ha {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for f in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "log") {
                    let text = fs::read_to_string(f.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("---- {} (last 40 lines) ----", f.path().display());
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `[ha]` for one node of VRID 51 with the lab VIP.
pub fn ha_config(priority: u8, version: u8, extra: &str) -> String {
    let (int, auth) = if version == 3 {
        ("100ms", "")
    } else {
        ("1s", "auth_pass = \"1111\"\n")
    };
    format!(
        "[ha]\nadmin = \"127.0.0.1:9091\"\n\n[[ha.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = {priority}\nadvert_int = \"{int}\"\nversion = {version}\n{auth}virtual_ipaddress = [\"{VIP}/24\"]\n{extra}"
    )
}

/// keepalived.conf with the same settings as [`ha_config`].
pub fn keepalived_config(priority: u8, version: u8) -> String {
    let (int, auth) = if version == 3 {
        ("0.1", String::new())
    } else {
        (
            "1",
            "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n"
                .to_owned(),
        )
    };
    format!(
        "global_defs {{\n    vrrp_version {version}\n    script_user root\n    enable_script_security\n}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority {priority}\n    advert_int {int}\n{auth}    virtual_ipaddress {{\n        {VIP}/24\n    }}\n}}\n"
    )
}

/// A VRRPv3 advert for VRID 51 and the lab VIP from the client (.10) to
/// `dst`, with any `priority` and Max Advert Interval (`interval_cs`; 0 is
/// what the receive path must refuse).
pub fn forged_v3(priority: u8, interval_cs: u16, dst: Ipv4Addr) -> Vec<u8> {
    let vip: Ipv4Addr = VIP.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    let a = Advert {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs,
        addrs: vec![IpAddr::V4(vip)],
        auth: Auth::None,
    };
    a.encode(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), IpAddr::V4(dst))
}
