//! Turns one [`InstanceSpec`] into a ready [`Driver`]: looks up the
//! interface, opens the sockets and netlink, starts the probes. Everything
//! here is I/O; every value was checked when the config was loaded.

use std::net::IpAddr;

use stackd_common::config::ha::{EmailConfig, InstanceSpec};
use stackd_common::http_client::HttpClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::driver::Driver;
use crate::garp::{Announcer, PacketSocket};
use crate::iface::Iface;
use crate::netlink::Vips;
use crate::notify::Notifier;
use crate::ports::LinuxPorts;
use crate::probe::Sample;
use crate::socket::VrrpSocket;
use crate::status::Metrics;
use crate::HaError;

pub(crate) struct Built {
    pub driver: Driver<LinuxPorts>,
    pub samples: mpsc::Receiver<Sample>,
    /// Stops this instance's probes (a reload starts new ones).
    pub probes: CancellationToken,
}

pub(crate) fn instance(
    spec: &InstanceSpec,
    email: Option<EmailConfig>,
    metrics: Metrics,
    http: &HttpClient,
    shutdown: &CancellationToken,
) -> Result<Built, HaError> {
    let name = spec.name.clone();
    let setup = |what: &'static str| {
        let name = name.clone();
        move |source: std::io::Error| HaError::Setup {
            instance: name,
            what,
            source,
        }
    };
    let vip_addrs: Vec<IpAddr> = spec.vips.iter().map(|v| v.addr()).collect();
    let iface = Iface::lookup(&spec.interface).map_err(setup("interface"))?;
    let v6 = vip_addrs.iter().any(IpAddr::is_ipv6);
    let no_source = |family: &str| {
        setup("interface")(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!(
                "{} has no {family} address of its own to send adverts from",
                spec.interface
            ),
        ))
    };
    let src = match (spec.unicast_src_ip, v6) {
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
    let sock = VrrpSocket::open(&spec.interface, iface.index, src, &spec.unicast_peers)
        .map_err(setup("VRRP raw socket (needs CAP_NET_RAW)"))?;
    let packet =
        PacketSocket::open(iface.index).map_err(setup("AF_PACKET socket for gratuitous ARP"))?;
    let garp = Announcer::start(
        packet,
        crate::garp::frames(iface.mac, &vip_addrs),
        name.clone(),
    );
    let vips = Vips::new(
        &spec.interface,
        iface.index,
        spec.vrid.get(),
        spec.vips.clone(),
    )
    .map_err(setup("netlink"))?;
    let (rx, probes) = probes(spec, http, shutdown);
    let notifier = notifier(spec, email, http);
    let own: Vec<IpAddr> = iface
        .v4
        .iter()
        .map(|a| IpAddr::V4(*a))
        .chain(iface.v6.iter().map(|a| IpAddr::V6(*a)))
        .collect();
    let ports = LinuxPorts {
        garp,
        sock,
        vips,
        mac: iface.mac,
    };
    let driver = Driver::new(spec.clone(), ports, own, metrics, notifier);
    Ok(Built {
        driver,
        samples: rx,
        probes,
    })
}

/// Starts one probe task per track entry; cancel the token to stop them.
pub(crate) fn probes(
    spec: &InstanceSpec,
    http: &HttpClient,
    shutdown: &CancellationToken,
) -> (mpsc::Receiver<Sample>, CancellationToken) {
    let stop = shutdown.child_token();
    let (tx, rx) = mpsc::channel(64);
    for (i, t) in spec.tracks.iter().enumerate() {
        tokio::spawn(crate::probe::run(
            i,
            t.clone(),
            http.clone(),
            tx.clone(),
            stop.clone(),
        ));
    }
    (rx, stop)
}

pub(crate) fn notifier(
    spec: &InstanceSpec,
    email: Option<EmailConfig>,
    http: &HttpClient,
) -> Notifier {
    Notifier {
        script: spec.notify.clone(),
        webhook: spec.notify_webhook.clone(),
        email,
        http: http.clone(),
    }
}
