//! The IPv6 half of [`crate::socket`]: an IPv6 raw socket never shows the IP
//! header, so the hop limit (RFC 5798 §7.1: must be 255) and the destination
//! (for the pseudo-header checksum) arrive as ancillary data, read here with
//! recvmsg(2).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::socket::{Received, GROUP_V6};

fn on(sock: &Socket, opt: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: valid fd, pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            opt,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receive socket: pinned to the interface, in ff02::12 when `multicast`,
/// asking for hop limit and packet info.
pub(crate) fn rx(ifname: &str, ifindex: u32, multicast: bool) -> io::Result<Socket> {
    let rx = Socket::new(Domain::IPV6, Type::RAW, Some(socket2::Protocol::from(112)))?;
    rx.bind_device(Some(ifname.as_bytes()))?;
    if multicast {
        rx.join_multicast_v6(&GROUP_V6, ifindex)?;
    }
    on(&rx, libc::IPV6_RECVHOPLIMIT)?;
    on(&rx, libc::IPV6_RECVPKTINFO)?;
    Ok(rx)
}

/// Send socket: bound to our link-local address, hop limit 255.
pub(crate) fn tx(ifname: &str, ifindex: u32, src: Ipv6Addr) -> io::Result<Socket> {
    let tx = Socket::new(Domain::IPV6, Type::RAW, Some(socket2::Protocol::from(112)))?;
    tx.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, ifindex)))?;
    tx.bind_device(Some(ifname.as_bytes()))?;
    tx.set_multicast_if_v6(ifindex)?;
    tx.set_multicast_hops_v6(255)?;
    tx.set_unicast_hops_v6(255)?;
    tx.set_multicast_loop_v6(false)?;
    Ok(tx)
}

/// One recvmsg(2): payload into `buf`, source, destination and hop limit.
pub(crate) fn recv(sock: &Socket, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut ctrl = [0u64; 32]; // 256 bytes, 8-aligned: room for both cmsgs
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 32]>();
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated size.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let (mut dst, mut hop_limit) = (Ipv6Addr::UNSPECIFIED, 0u8);
    // SAFETY: CMSG_* walk the control buffer the kernel just filled, bounded
    // by msg_controllen; each payload is read unaligned at its stated type.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    hop_limit =
                        std::ptr::read_unaligned(data.cast::<libc::c_int>()).clamp(0, 255) as u8;
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let src = Ipv6Addr::from(from.sin6_addr.s6_addr);
    Ok(Received::V6 {
        len: n as usize,
        src,
        dst,
        hop_limit,
    })
}
