//! Gratuitous ARP and unsolicited Neighbor Advertisements for the VIPs.
//!
//! A new master must tell every host on the segment that the VIP now lives
//! at its MAC, or clients keep sending to the dead one until their ARP cache
//! expires. Frames are built here, pure, byte-for-byte as keepalived 2.2.7
//! sends them (see `tests/garp_golden.rs`): an ARP *request* broadcast with
//! sender IP = target IP = VIP and target MAC ff:ff:ff:ff:ff:ff, 42 bytes.
//! They are sent on an AF_PACKET socket ([`PacketSocket`]) because the kernel
//! would never emit an ARP for an address on its own accord, by an
//! [`Announcer`] off the instance's event loop: a burst of
//! `garp_master_repeat` x VIPs frames never delays an advert or a timer.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::checksum;

pub type Mac = [u8; 6];
const BROADCAST: Mac = [0xff; 6];

/// RFC 5227 §3 / RFC 826 ARP request announcing `vip` at `mac`:
/// ```text
/// eth: ff:ff:ff:ff:ff:ff <- mac, type 0x0806
/// arp: htype 1, ptype 0x0800, hlen 6, plen 4, op 1 (request),
///      sha mac, spa vip, tha ff:ff:ff:ff:ff:ff, tpa vip
/// ```
pub fn arp_announce(mac: Mac, vip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    f[32..38].copy_from_slice(&BROADCAST);
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// RFC 4861 §4.4/§7.2.6 unsolicited Neighbor Advertisement for `vip`, to
/// all-nodes ff02::1 with the Override flag and a target link-layer option.
pub fn unsolicited_na(mac: Mac, vip: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = vec![136u8, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac);
    let sum = checksum::pseudo(IpAddr::V6(vip), IpAddr::V6(all_nodes), 58, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&all_nodes.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The announcement frames for every VIP.
pub(crate) fn frames(mac: Mac, vips: &[IpAddr]) -> Vec<Vec<u8>> {
    vips.iter()
        .map(|v| match v {
            IpAddr::V4(a) => arp_announce(mac, *a).to_vec(),
            IpAddr::V6(a) => unsolicited_na(mac, *a),
        })
        .collect()
}

/// An AF_PACKET socket for sending raw Ethernet frames out of one interface.
///
/// Opened once and kept: closing a packet socket waits for an RCU grace
/// period (tens of milliseconds), which would sit right on the failover path.
pub(crate) struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

// === impl PacketSocket ===

impl PacketSocket {
    pub(crate) fn open(ifindex: u32) -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2) call; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own; OwnedFd closes it on drop.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd, ifindex })
    }

    /// Sends each frame once; the destination MAC is the frame's first 6 bytes.
    pub(crate) fn send(&self, frames: &[Vec<u8>]) -> io::Result<()> {
        for f in frames {
            // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(f.get(..6).unwrap_or(&BROADCAST));
            let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buffer and address pointers are valid for the given lengths.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    len,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// The frames of one burst; replaced whole when the VIPs change (SIGHUP).
type Frames = Arc<std::sync::Mutex<Arc<Vec<Vec<u8>>>>>;

/// Sends GARP bursts on its own task; asking never waits.
pub(crate) struct Announcer {
    bursts: mpsc::Sender<u32>,
    frames: Frames,
}

// === impl Announcer ===

impl Announcer {
    /// Starts the sending task for `frames` on `sock` (on the current runtime).
    pub(crate) fn start(sock: PacketSocket, frames: Vec<Vec<u8>>, instance: String) -> Announcer {
        // One burst queued behind the one being sent is enough: a newer
        // request while both slots are taken would send the same frames.
        let (bursts, mut rx) = mpsc::channel::<u32>(1);
        let sock = Arc::new(sock);
        let shared: Frames = Arc::new(std::sync::Mutex::new(Arc::new(frames)));
        let current = shared.clone();
        tokio::spawn(async move {
            while let Some(count) = rx.recv().await {
                let frames = match current.lock() {
                    Ok(g) => g.clone(),
                    Err(p) => p.into_inner().clone(),
                };
                let sock = sock.clone();
                let sent = tokio::task::spawn_blocking(move || {
                    (0..count).try_for_each(|_| sock.send(&frames))
                })
                .await;
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(%instance, error = %e, "gratuitous ARP failed"),
                    Err(e) => tracing::warn!(%instance, error = %e, "gratuitous ARP task failed"),
                }
            }
        });
        Announcer {
            bursts,
            frames: shared,
        }
    }

    /// Announces `frames` from the next burst on.
    pub(crate) fn set_frames(&self, frames: Vec<Vec<u8>>) {
        let mut g = match self.frames.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = Arc::new(frames);
    }

    /// Queues a burst of `count` rounds; dropped if one is already queued.
    pub(crate) fn burst(&self, count: u32) {
        let _ = self.bursts.try_send(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn na_checksum_verifies() {
        let mac = [2, 0, 0, 0, 0, 1];
        let vip: Ipv6Addr = "2001:db8::88".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let f = unsolicited_na(mac, vip);
        assert_eq!(f.len(), 14 + 40 + 32);
        let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(
            checksum::pseudo(IpAddr::V6(vip), IpAddr::V6(all), 58, &f[54..]),
            0
        );
        assert_eq!(&f[54 + 8..54 + 24], &vip.octets());
    }
}
