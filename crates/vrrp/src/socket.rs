//! The VRRP raw socket (IP protocol 112): multicast to 224.0.0.18 on one
//! interface, or unicast to configured peers.
//!
//! Two sockets, because a raw socket bound to an address only receives
//! packets *to* that address and would miss the multicast group:
//! - `rx`: unbound, pinned to the interface (SO_BINDTODEVICE), member of
//!   224.0.0.18 there; the IP header comes with every datagram, which is how
//!   we read the TTL that RFC 5798 §7.1 requires to be 255.
//! - `tx`: bound to our primary address (so adverts carry it as the source,
//!   RFC 5798 §5.1.1.2), TTL 255 for multicast and unicast (§5.1.1.3), no
//!   multicast loopback.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

/// RFC 5798 §5.1.1.2: the IPv4 multicast group for VRRP.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// An open VRRP socket pair on one interface.
pub struct VrrpSocket {
    rx: AsyncFd<Socket>,
    tx: Socket,
    dests: Vec<IpAddr>,
}

// === impl VrrpSocket ===

impl VrrpSocket {
    /// `peers` empty: multicast; otherwise unicast to each peer.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        src: Ipv4Addr,
        peers: &[IpAddr],
    ) -> io::Result<VrrpSocket> {
        let proto = Some(Protocol::from(i32::from(crate::checksum::PROTO_VRRP)));
        let rx = Socket::new(Domain::IPV4, Type::RAW, proto)?;
        rx.bind_device(Some(ifname.as_bytes()))?;
        if peers.is_empty() {
            rx.join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        }
        rx.set_nonblocking(true)?;

        let tx = Socket::new(Domain::IPV4, Type::RAW, proto)?;
        tx.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))?;
        tx.bind_device(Some(ifname.as_bytes()))?;
        tx.set_multicast_if_v4(&src)?;
        tx.set_multicast_ttl_v4(255)?;
        tx.set_multicast_loop_v4(false)?;
        tx.set_ttl_v4(255)?;
        // tx never reads; keep its receive queue from holding memory.
        let _ = tx.set_recv_buffer_size(1);
        tx.set_nonblocking(true)?;

        let dests = if peers.is_empty() {
            vec![IpAddr::V4(GROUP_V4)]
        } else {
            peers.to_vec()
        };
        // SAFETY: `rx` is an owned socket2::Socket; its fd stays open and the same
        // for as long as the AsyncFd owns it.
        let rx = unsafe { AsyncFd::register(rx) }.map_err(io::Error::from)?;
        Ok(VrrpSocket { rx, tx, dests })
    }

    /// Where adverts go: the group or the unicast peers.
    pub fn dests(&self) -> &[IpAddr] {
        &self.dests
    }

    /// Sends one encoded VRRP message to `dst`.
    pub fn send_to(&self, msg: &[u8], dst: IpAddr) -> io::Result<()> {
        self.tx
            .send_to(msg, &SockAddr::from(SocketAddr::new(dst, 0)))
            .map(|_| ())
    }

    /// Next datagram, IPv4 header included.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.rx.readable().await?;
            match guard.try_io(|s| s.get_ref().read(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}
