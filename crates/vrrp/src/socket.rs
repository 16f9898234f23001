//! The VRRP raw sockets (IP protocol 112): multicast to 224.0.0.18 or
//! ff02::12 on one interface, or unicast to configured peers.
//!
//! Two sockets per instance, because a raw socket bound to an address only
//! receives packets *to* that address and would miss the multicast group:
//! - `rx`: unbound, pinned to the interface (SO_BINDTODEVICE), member of the
//!   group there. IPv4 hands us the IP header (for the TTL that RFC 5798 §7.1
//!   requires to be 255); IPv6 gives the hop limit and destination as
//!   ancillary data (see [`crate::socket6`]).
//! - `tx`: bound to our primary address (IPv4) or link-local address (IPv6),
//!   so adverts carry it as the source (RFC 5798 §5.1.1.2 / §5.1.2.1), with
//!   TTL / hop limit 255 (§5.1.1.3 / §5.1.2.3) and no multicast loopback.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

/// RFC 5798 §5.1.1.2: the IPv4 multicast group for VRRP.
pub(crate) const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// RFC 5798 §5.1.2.2: the IPv6 multicast group for VRRP.
pub(crate) const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// One received datagram, as the driver's validation needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// IPv4: `len` bytes starting with the IP header.
    V4 { len: usize },
    /// IPv6: `len` bytes of VRRP message; header fields from ancillary data.
    V6 {
        len: usize,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
    },
}

/// An open VRRP socket pair on one interface.
pub(crate) struct VrrpSocket {
    rx: AsyncFd<Socket>,
    tx: Socket,
    src: IpAddr,
    ifindex: u32,
    dests: Vec<IpAddr>,
}

fn proto() -> Option<Protocol> {
    Some(Protocol::from(i32::from(crate::checksum::PROTO_VRRP)))
}

// === impl VrrpSocket ===

impl VrrpSocket {
    /// `peers` empty: multicast; otherwise unicast to each peer. The family
    /// of `src` picks IPv4 or IPv6.
    pub(crate) fn open(
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        peers: &[IpAddr],
    ) -> io::Result<VrrpSocket> {
        let (rx, tx, group) = match src {
            IpAddr::V4(a) => (
                Self::rx_v4(ifname, ifindex, peers)?,
                Self::tx_v4(ifname, a)?,
                IpAddr::V4(GROUP_V4),
            ),
            IpAddr::V6(a) => (
                crate::socket6::rx(ifname, ifindex, peers.is_empty())?,
                crate::socket6::tx(ifname, ifindex, a)?,
                IpAddr::V6(GROUP_V6),
            ),
        };
        // tx never reads; keep its receive queue from holding memory.
        let _ = tx.set_recv_buffer_size(1);
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        // SAFETY: `rx` is an owned socket2::Socket; its fd stays open and the
        // same for as long as the AsyncFd owns it.
        let rx = unsafe { AsyncFd::register(rx) }.map_err(io::Error::from)?;
        let dests = if peers.is_empty() {
            vec![group]
        } else {
            peers.to_vec()
        };
        Ok(VrrpSocket {
            rx,
            tx,
            src,
            ifindex,
            dests,
        })
    }

    fn rx_v4(ifname: &str, ifindex: u32, peers: &[IpAddr]) -> io::Result<Socket> {
        let rx = Socket::new(Domain::IPV4, Type::RAW, proto())?;
        rx.bind_device(Some(ifname.as_bytes()))?;
        if peers.is_empty() {
            rx.join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        }
        Ok(rx)
    }

    fn tx_v4(ifname: &str, src: Ipv4Addr) -> io::Result<Socket> {
        let tx = Socket::new(Domain::IPV4, Type::RAW, proto())?;
        tx.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))?;
        tx.bind_device(Some(ifname.as_bytes()))?;
        tx.set_multicast_if_v4(&src)?;
        tx.set_multicast_ttl_v4(255)?;
        tx.set_multicast_loop_v4(false)?;
        tx.set_ttl_v4(255)?;
        Ok(tx)
    }

    /// Our source address.
    pub(crate) fn source(&self) -> IpAddr {
        self.src
    }

    /// Where adverts go: the group or the unicast peers.
    pub(crate) fn dests(&self) -> &[IpAddr] {
        &self.dests
    }

    /// Sends one encoded VRRP message to `dst`.
    pub(crate) fn send_to(&self, msg: &[u8], dst: IpAddr) -> io::Result<()> {
        let to = match dst {
            IpAddr::V4(d) => SocketAddr::V4(SocketAddrV4::new(d, 0)),
            // Link-local and multicast destinations need the interface as scope.
            IpAddr::V6(d) => SocketAddr::V6(SocketAddrV6::new(d, 0, 0, self.ifindex)),
        };
        self.tx.send_to(msg, &SockAddr::from(to)).map(|_| ())
    }

    /// Next datagram.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut guard = self.rx.readable().await?;
            let r = match self.src {
                IpAddr::V4(_) => {
                    guard.try_io(|s| s.get_ref().read(buf).map(|len| Received::V4 { len }))
                }
                IpAddr::V6(_) => guard.try_io(|s| crate::socket6::recv(s.get_ref(), buf)),
            };
            match r {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}
