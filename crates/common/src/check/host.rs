//! What only the machine the file is for can answer: does it have these
//! interfaces, are the notify programs there and executable, do the TLS
//! files load and belong together. Behind [`Host`] so that the rules stay
//! plain functions and `stackd check` can skip them for another host's file.

use std::path::Path;

use super::Issue;
use crate::config::proxy::TlsCert;
use crate::config::{Config, KeyPath};

/// Questions about the machine `stackd check` runs on.
pub trait Host {
    /// Whether a network interface of this name exists.
    fn has_interface(&self, name: &str) -> bool;
    /// `Ok` when `path` is a regular file this host can execute; else why not.
    fn executable(&self, path: &Path) -> Result<(), String>;
    /// `Ok` when the certificate chain and key load and the key is the certificate's.
    fn tls_pair(&self, cert: &TlsCert) -> Result<(), String>;
}

/// The host rules over one file.
pub fn check(file: usize, c: &Config, host: &dyn Host, out: &mut Vec<Issue>) {
    if let Some(ha) = &c.ha {
        for (i, inst) in ha.instance.iter().enumerate() {
            let at = KeyPath::root("ha").key("instance").index(i);
            if !host.has_interface(&inst.interface) {
                out.push(Issue::error(
                    file,
                    at.key("interface"),
                    format!(
                        "this host has no interface \"{}\" (see `ip -br link`)",
                        inst.interface
                    ),
                ));
            }
            for (j, t) in inst.track.iter().enumerate() {
                if let Some(ifname) = &t.interface {
                    if !host.has_interface(ifname) {
                        out.push(Issue::error(
                            file,
                            at.key("track").index(j).key("interface"),
                            format!("this host has no interface \"{ifname}\" to track"),
                        ));
                    }
                }
            }
            if let Some(n) = &inst.notify {
                if let Err(why) = host.executable(n) {
                    out.push(Issue::error(
                        file,
                        at.key("notify"),
                        format!("notify program {}: {why}", n.display()),
                    ));
                }
            }
        }
    }
    if let Some(p) = &c.proxy {
        for (i, t) in p.tls.iter().enumerate() {
            if let Err(why) = host.tls_pair(t) {
                out.push(Issue::error(
                    file,
                    KeyPath::root("proxy").key("tls").index(i),
                    why,
                ));
            }
        }
    }
}

/// [`Host::executable`] for this machine: exists, is a file, has an execute bit.
pub fn local_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => e.to_string(),
    })?;
    if !m.is_file() {
        return Err("is not a regular file".into());
    }
    if m.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "is not executable (mode {:o}); chmod +x it",
            m.permissions().mode() & 0o7777
        ));
    }
    Ok(())
}

/// [`Host::has_interface`] for this machine.
pub fn local_has_interface(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && Path::new("/sys/class/net").join(name).exists()
}
