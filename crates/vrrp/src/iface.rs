//! What we need to know about the VRRP interface: index, MAC, primary
//! address, link state. Read from getifaddrs(3) and /sys, which need no
//! netlink round trip and work the same inside a network namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::garp::Mac;

/// A snapshot of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub mac: Mac,
    /// Every IPv4 address, primary first (kernel order).
    pub v4: Vec<Ipv4Addr>,
    /// Every IPv6 address; the link-local one is the VRRPv3 source (RFC 5798 §5.1.2.1).
    pub v6: Vec<Ipv6Addr>,
}

// === impl Iface ===

impl Iface {
    pub fn lookup(name: &str) -> io::Result<Iface> {
        let index = nix::net::if_::if_nametoindex(name).map_err(|e| {
            io::Error::new(io::ErrorKind::NotFound, format!("interface {name}: {e}"))
        })?;
        let mut mac = [0u8; 6];
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
            if a.interface_name != name {
                continue;
            }
            let Some(addr) = a.address else { continue };
            if let Some(l) = addr.as_link_addr().and_then(|l| l.addr()) {
                mac = l;
            } else if let Some(s) = addr.as_sockaddr_in() {
                v4.push(s.ip());
            } else if let Some(s) = addr.as_sockaddr_in6() {
                v6.push(s.ip());
            }
        }
        Ok(Iface {
            name: name.to_owned(),
            index,
            mac,
            v4,
            v6,
        })
    }

    /// RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        self.v6
            .iter()
            .copied()
            .find(|a| a.segments()[0] & 0xffc0 == 0xfe80)
    }

    /// RFC 5798 §5.1.1.2: the source is the interface's primary address,
    /// never one of the VIPs we may be holding.
    pub fn primary_v4(&self, vips: &[IpAddr]) -> Option<Ipv4Addr> {
        self.v4
            .iter()
            .copied()
            .find(|a| !vips.contains(&IpAddr::V4(*a)))
    }
}

/// Link state as keepalived's `track_interface` sees it: administratively
/// up and with carrier (operstate "up", or "unknown" for dummy devices).
pub fn link_up(name: &str) -> bool {
    let base = format!("/sys/class/net/{name}");
    let oper = std::fs::read_to_string(format!("{base}/operstate")).unwrap_or_default();
    let flags = std::fs::read_to_string(format!("{base}/flags")).unwrap_or_default();
    let admin_up =
        u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).is_ok_and(|f| f & 1 == 1);
    admin_up && matches!(oper.trim(), "up" | "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_and_missing_is_an_error() {
        let lo = Iface::lookup("lo").expect("lo exists");
        assert!(lo.index >= 1);
        assert!(lo.v4.contains(&Ipv4Addr::LOCALHOST));
        assert!(Iface::lookup("nonexistent0").is_err());
        assert!(link_up("lo"));
        assert!(!link_up("nonexistent0"));
    }
}
