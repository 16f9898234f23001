//! Turns one validated `[[ha.instance]]` into a ready [`Driver`]: looks up
//! the interface, opens the sockets and netlink, starts the probes.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use stackd_common::config::ha::{EmailConfig, Instance};
use stackd_common::http_client::HttpClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::driver::Driver;
use crate::iface::Iface;
use crate::netlink::Vips;
use crate::notify::Notifier;
use crate::packet::{pass, Version};
use crate::ports::LinuxPorts;
use crate::probe::Sample;
use crate::socket::VrrpSocket;
use crate::state::{Params, VirtualRouter};
use crate::status::{InstanceStatus, Metrics, SharedStatus, TrackStatus};
use crate::validate::Expect;
use crate::HaError;

pub(crate) struct Built {
    pub driver: Driver<LinuxPorts>,
    pub samples: mpsc::Receiver<Sample>,
    pub status: SharedStatus,
}

pub(crate) fn instance(
    inst: &Instance,
    email: Option<EmailConfig>,
    metrics: Metrics,
    http: &HttpClient,
    shutdown: &CancellationToken,
) -> Result<Built, HaError> {
    let name = inst.name.clone();
    let setup = |what: &'static str| {
        let name = name.clone();
        move |source: std::io::Error| HaError::Setup {
            instance: name,
            what,
            source,
        }
    };
    let vip_addrs: Vec<IpAddr> = inst.virtual_ipaddress.iter().map(|v| v.addr()).collect();
    let iface = Iface::lookup(&inst.interface).map_err(setup("interface"))?;
    let v6 = vip_addrs.iter().any(IpAddr::is_ipv6);
    let no_source = |family: &str| {
        setup("interface")(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!(
                "{} has no {family} address of its own to send adverts from",
                inst.interface
            ),
        ))
    };
    let src = match (inst.unicast_src_ip, v6) {
        (Some(a), _) => a,
        (None, false) => IpAddr::V4(
            iface
                .primary_v4(&vip_addrs)
                .ok_or_else(|| no_source("IPv4"))?,
        ),
        (None, true) => IpAddr::V6(
            iface
                .link_local()
                .ok_or_else(|| no_source("link-local IPv6"))?,
        ),
    };
    if src.is_ipv6() != v6 {
        return Err(HaError::Unsupported {
            instance: name,
            what: "unicast_src_ip of another family than the virtual addresses",
        });
    }
    let vrid = inst.virtual_router_id.clamp(1, 255) as u8;
    let sock = VrrpSocket::open(&inst.interface, iface.index, src, &inst.unicast_peers)
        .map_err(setup("VRRP raw socket (needs CAP_NET_RAW)"))?;
    let garp = crate::garp::PacketSocket::open(iface.index)
        .map_err(setup("AF_PACKET socket for gratuitous ARP"))?;
    let vips = Vips::new(
        &inst.interface,
        iface.index,
        vrid,
        inst.virtual_ipaddress.clone(),
    )
    .map_err(setup("netlink"))?;
    let version = if inst.version == 3 {
        Version::V3
    } else {
        Version::V2
    };
    let params = Params {
        version,
        priority: inst.priority.clamp(1, 255) as u8,
        adver_int: inst.advert_int,
        preempt: inst.preempt,
        preempt_delay: inst.preempt_delay,
        primary: src,
    };
    let expect = Expect {
        version,
        vrid,
        auth: inst.auth_pass.as_deref().map(pass),
        adver_int: inst.advert_int,
        own: iface
            .v4
            .iter()
            .map(|a| IpAddr::V4(*a))
            .chain(iface.v6.iter().map(|a| IpAddr::V6(*a)))
            .chain([src])
            .filter(|a| !vip_addrs.contains(a))
            .collect(),
        vips: vip_addrs,
    };
    let status: SharedStatus = Arc::new(Mutex::new(InstanceStatus {
        name: name.clone(),
        interface: inst.interface.clone(),
        vrid,
        version: inst.version,
        state: "INIT".into(),
        priority: params.priority,
        effective_priority: params.priority,
        master: None,
        vips: inst
            .virtual_ipaddress
            .iter()
            .map(ToString::to_string)
            .collect(),
        last_transition: None,
        adverts_sent: 0,
        adverts_received: 0,
        transitions: 0,
        rejected: Default::default(),
        tracks: inst
            .track
            .iter()
            .map(|t| TrackStatus {
                check: describe(t),
                health: "unknown",
                weight: t.weight,
            })
            .collect(),
    }));
    metrics.init_instance(&name);
    let (tx, rx) = mpsc::channel(64);
    for (i, t) in inst.track.iter().enumerate() {
        tokio::spawn(crate::probe::run(
            i,
            t.clone(),
            http.clone(),
            tx.clone(),
            shutdown.child_token(),
        ));
    }
    let notifier = Notifier {
        script: inst.notify.clone(),
        webhook: inst.notify_webhook.clone(),
        email,
        http: http.clone(),
    };
    let ports = LinuxPorts {
        garp,
        iface,
        sock,
        vips,
    };
    let driver = Driver::new(
        inst.clone(),
        VirtualRouter::new(params),
        ports,
        expect,
        status.clone(),
        metrics,
        notifier,
    );
    Ok(Built {
        driver,
        samples: rx,
        status,
    })
}

fn describe(t: &stackd_common::config::ha::Track) -> String {
    match (&t.http, &t.process, &t.script, &t.interface) {
        (Some(u), ..) => format!("http {u}"),
        (_, Some(p), ..) => format!("process {p}"),
        (_, _, Some(s), _) => format!("script {s}"),
        (_, _, _, Some(i)) => format!("interface {i}"),
        _ => "none".into(),
    }
}
