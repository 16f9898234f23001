//! A proxy host's `[ha]` must follow its own `[proxy]`: the seed stack's
//! `check_nginx_dead.sh`. A track pointed anywhere else moves the VIP on
//! something that is not this proxy's health, and a host with no such track
//! keeps the VIP while its proxy is dead.

use std::net::{IpAddr, SocketAddr};

use super::Issue;
use crate::config::{Config, KeyPath};

pub fn track_follows_proxy(file: usize, c: &Config, out: &mut Vec<Issue>) {
    let (Some(proxy), Some(ha)) = (&c.proxy, &c.ha) else {
        return;
    };
    let Some(admin) = proxy.admin else {
        out.push(Issue::warning(
            file,
            KeyPath::root("proxy").key("admin"),
            "[proxy] has no admin listener, so [ha] cannot track this proxy's /healthz; set admin = \"127.0.0.1:9090\" and track = [{ http = \"http://127.0.0.1:9090/healthz\" }]".to_owned(),
        ));
        return;
    };
    for (i, inst) in ha.instance.iter().enumerate() {
        let at = KeyPath::root("ha").key("instance").index(i);
        let http: Vec<(usize, &str)> = inst
            .track
            .iter()
            .enumerate()
            .filter_map(|(j, t)| t.http.as_deref().map(|u| (j, u)))
            .collect();
        if http.is_empty() {
            out.push(Issue::warning(
                file,
                at.key("track"),
                format!(
                    "instance \"{}\" does not track this host's proxy: when the proxy dies this host keeps the VIP and clients get connection refused; add track = [{{ http = \"http://{}/healthz\" }}]",
                    inst.name, loopback_form(admin)
                ),
            ));
            continue;
        }
        for (j, url) in http {
            if !targets(url, admin) {
                out.push(Issue::warning(
                    file,
                    at.key("track").index(j).key("http"),
                    format!(
                        "{url} is not this host's proxy admin listener {admin} (proxy.admin): the VIP would follow something other than this proxy's health; use http://{}/healthz",
                        loopback_form(admin)
                    ),
                ));
            }
        }
    }
}

/// The address to reach `admin` from this host (an unspecified IP means loopback).
fn loopback_form(admin: SocketAddr) -> SocketAddr {
    match admin.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], admin.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, admin.port()))
        }
        _ => admin,
    }
}

/// Whether `url` reaches the listener on `admin`.
fn targets(url: &str, admin: SocketAddr) -> bool {
    let Some((ip, port)) = url_host(url) else {
        return false;
    };
    port == admin.port() && (ip == admin.ip() || (admin.ip().is_unspecified() && ip.is_loopback()))
}

/// The IP and port of an `http://` URL whose host is a literal or `localhost`.
pub fn url_host(url: &str) -> Option<(IpAddr, u16)> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 80,
    };
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().ok()?
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        let l = |s: &str| url_host(s).map(|(i, p)| SocketAddr::new(i, p).to_string());
        assert_eq!(
            l("http://127.0.0.1:9090/healthz").as_deref(),
            Some("127.0.0.1:9090")
        );
        assert_eq!(l("http://localhost/x").as_deref(), Some("127.0.0.1:80"));
        assert_eq!(l("http://[::1]:9090/").as_deref(), Some("[::1]:9090"));
        assert_eq!(l("http://[::1]/").as_deref(), Some("[::1]:80"));
        assert_eq!(l("http://example.com:9090/"), None);
        let any: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert!(targets("http://127.0.0.1:9090/healthz", any));
        assert!(!targets("http://127.0.0.1:9091/healthz", any));
    }
}
