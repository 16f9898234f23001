//! The I/O seams of the driver: everything it does to the outside world.
//!
//! [`Ports`] is implemented by [`LinuxPorts`] (raw socket, rtnetlink,
//! AF_PACKET). The driver only sees the trait, so its loop could run
//! against an in-memory bus; the pure parts are tested that way already.

use std::io;
use std::net::IpAddr;

use futures::future::BoxFuture;
use ipnet::IpNet;

use crate::garp::Announcer;
use crate::netlink::Vips;
use crate::socket::{Received, VrrpSocket};

/// What the driver needs from the network.
pub trait Ports: Send + Sync + 'static {
    /// Our source address (the interface's primary address).
    fn source(&self) -> IpAddr;
    /// Sends one encoded VRRP message; `encode` gets (src, dst) for the checksum.
    fn send(&self, encode: &dyn Fn(IpAddr, IpAddr) -> Vec<u8>) -> io::Result<()>;
    /// Next datagram (IPv4: header included; IPv6: header fields alongside).
    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<Received>>;
    fn add_vips(&self) -> BoxFuture<'_, io::Result<()>>;
    fn del_vips(&self) -> BoxFuture<'_, io::Result<()>>;
    /// Queues `count` gratuitous ARPs / NAs for every VIP. Returns at once:
    /// the frames go out off the event loop, failures are logged there.
    fn announce(&self, count: u32);
    /// A reloaded VIP list. `held`: the VIPs are on the interface now, so
    /// the new ones are added and the gone ones removed; the ones in both
    /// lists stay untouched.
    fn set_vips(&mut self, vips: Vec<IpNet>, held: bool) -> BoxFuture<'_, io::Result<()>>;
}

/// The real thing.
pub(crate) struct LinuxPorts {
    pub(crate) garp: Announcer,
    pub(crate) sock: VrrpSocket,
    pub(crate) vips: Vips,
    /// The interface's MAC, for the gratuitous ARP frames.
    pub(crate) mac: crate::garp::Mac,
}

// === impl LinuxPorts ===

impl Ports for LinuxPorts {
    fn source(&self) -> IpAddr {
        self.sock.source()
    }

    fn send(&self, encode: &dyn Fn(IpAddr, IpAddr) -> Vec<u8>) -> io::Result<()> {
        let mut first_err = None;
        for &dst in self.sock.dests() {
            if let Err(e) = self.sock.send_to(&encode(self.sock.source(), dst), dst) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, io::Result<Received>> {
        Box::pin(self.sock.recv(buf))
    }

    fn add_vips(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.vips.add())
    }

    fn del_vips(&self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(self.vips.del())
    }

    fn announce(&self, count: u32) {
        self.garp.burst(count);
    }

    fn set_vips(&mut self, vips: Vec<IpNet>, held: bool) -> BoxFuture<'_, io::Result<()>> {
        let addrs: Vec<IpAddr> = vips.iter().map(IpNet::addr).collect();
        self.garp.set_frames(crate::garp::frames(self.mac, &addrs));
        Box::pin(self.vips.replace(vips, held))
    }
}
