//! Virtual addresses on the interface, through rtnetlink.
//!
//! IPv4 VIPs get the label `<ifname>:<vrid>` (when it fits in 15 bytes) so
//! `ip addr` shows which instance owns which address, the way keepalived
//! users are used to seeing `eth0:1` aliases. Adding an address that is
//! already there and removing one that is gone are both success: after a
//! crash the previous run's VIPs may still be present, and the start
//! removes them with [`Vips::del`] (a restarted node must not answer for a VIP
//! another node now holds).

use std::io;
use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags};
use rtnetlink::Handle;

/// Adds and removes one instance's VIPs.
#[derive(Clone)]
pub struct Vips {
    handle: Handle,
    ifindex: u32,
    label: Option<String>,
    vips: Vec<IpNet>,
}

fn to_io(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

// === impl Vips ===

impl Vips {
    /// Opens a netlink connection (its task runs on the current runtime).
    pub fn new(ifname: &str, ifindex: u32, vrid: u8, vips: Vec<IpNet>) -> io::Result<Vips> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let label = format!("{ifname}:{vrid}");
        Ok(Vips {
            handle,
            ifindex,
            label: (label.len() <= 15).then_some(label),
            vips,
        })
    }

    /// Adds every VIP; an address already present is fine.
    pub async fn add(&self) -> io::Result<()> {
        self.add_list(&self.vips).await
    }

    pub async fn del(&self) -> io::Result<()> {
        self.del_list(&self.vips).await
    }

    /// A SIGHUP's new list. When the addresses are configured now (`held`),
    /// the new ones are added and the gone ones removed; those in both
    /// lists are not touched, so they never leave the interface.
    pub async fn replace(&mut self, vips: Vec<IpNet>, held: bool) -> io::Result<()> {
        let old = std::mem::replace(&mut self.vips, vips);
        if held {
            let added: Vec<IpNet> = self
                .vips
                .iter()
                .filter(|v| !old.contains(v))
                .copied()
                .collect();
            let gone: Vec<IpNet> = old
                .iter()
                .filter(|v| !self.vips.contains(v))
                .copied()
                .collect();
            self.add_list(&added).await?;
            self.del_list(&gone).await?;
        }
        Ok(())
    }

    async fn add_list(&self, list: &[IpNet]) -> io::Result<()> {
        for v in list {
            let mut req = self
                .handle
                .address()
                .add(self.ifindex, v.addr(), v.prefix_len());
            if let (Some(l), IpAddr::V4(_)) = (&self.label, v.addr()) {
                req.message_mut()
                    .attributes
                    .push(AddressAttribute::Label(l.clone()));
            }
            if v.addr().is_ipv6() {
                // No duplicate address detection: the VIP must answer at once,
                // and its previous holder has just given it up.
                req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
            }
            match req.execute().await.map_err(to_io) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("adding {v}: {e}"))),
            }
        }
        Ok(())
    }

    /// Removes every VIP that is present on the interface.
    async fn del_list(&self, list: &[IpNet]) -> io::Result<()> {
        for v in list {
            let mut found = self
                .handle
                .address()
                .get()
                .set_link_index_filter(self.ifindex)
                .set_address_filter(v.addr())
                .execute();
            while let Some(msg) = found.try_next().await.map_err(to_io)? {
                match self
                    .handle
                    .address()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(to_io)
                {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
                    Err(e) => return Err(io::Error::new(e.kind(), format!("removing {v}: {e}"))),
                }
            }
        }
        Ok(())
    }
}
