//! TLS termination: several certificates, chosen by SNI.
//!
//! Each `[[proxy.tls]]` entry answers the names in `server_names`, or, when
//! that is empty, the DNS names in its certificate. Exact names win over
//! wildcards (`*.example.com`, one label deep as in RFC 6125 §6.4.3); a
//! client without SNI, or with an unknown name, gets the first certificate.
//! ALPN offers h2 and http/1.1.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use stackd_common::config::proxy::TlsCert;

use crate::error::{ErrorKind, ProxyError};

/// SNI name → certificate.
#[derive(Debug)]
struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// ("example.com", key) for "*.example.com".
    wildcard: Vec<(String, Arc<CertifiedKey>)>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return Some(k.clone());
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some((_, k)) = self.wildcard.iter().find(|(w, _)| w == parent) {
                return Some(k.clone());
            }
        }
        Some(self.default.clone())
    }
}

fn tls_err(msg: String) -> ProxyError {
    ProxyError::proxy(ErrorKind::Tls(msg))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ProxyError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| pem_err("certificate", path, e))?;
    if certs.is_empty() {
        return Err(tls_err(format!(
            "{}: no CERTIFICATE block found",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ProxyError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            tls_err(format!("{}: no PRIVATE KEY block found", path.display()))
        }
        e => pem_err("key", path, e),
    })
}

/// "cannot read key /etc/x.pem: No such file" or "/etc/x.pem: bad PEM: ...".
fn pem_err(what: &str, path: &Path, e: pem::Error) -> ProxyError {
    match e {
        pem::Error::Io(io) => tls_err(format!("cannot read {what} {}: {io}", path.display())),
        e => tls_err(format!("{}: bad PEM: {e}", path.display())),
    }
}

/// Builds the server config; `Ok(None)` when no certificates are configured.
pub(crate) fn server_config(
    certs: &[TlsCert],
) -> Result<Option<Arc<rustls::ServerConfig>>, ProxyError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut exact = HashMap::new();
    let mut wildcard = Vec::new();
    let mut default = None;
    for c in certs {
        let chain = load_certs(&c.cert)?;
        let key = load_key(&c.key)?;
        let signer = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| tls_err(format!("{}: unusable private key: {e}", c.key.display())))?;
        let names: Vec<String> = if c.server_names.is_empty() {
            let ee = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| {
                tls_err(format!(
                    "{}: cannot parse certificate: {e:?}",
                    c.cert.display()
                ))
            })?;
            ee.valid_dns_names().map(str::to_owned).collect()
        } else {
            c.server_names.clone()
        };
        let ck = Arc::new(CertifiedKey::new(chain, signer));
        if ck.keys_match().is_err() {
            return Err(tls_err(format!(
                "{} does not belong to the certificate in {}",
                c.key.display(),
                c.cert.display()
            )));
        }
        default.get_or_insert_with(|| ck.clone());
        for n in names {
            let n = n.to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(parent) => wildcard.push((parent.to_owned(), ck.clone())),
                None => {
                    exact.entry(n).or_insert_with(|| ck.clone());
                }
            }
        }
    }
    let Some(default) = default else {
        return Ok(None);
    };
    let resolver = SniResolver {
        exact,
        wildcard,
        default,
    };
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: ProxyError) -> String {
        e.to_string()
    }

    #[test]
    fn pem_problems_say_which_file_and_what() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.pem");
        let err = message(load_certs(&missing).expect_err("missing file"));
        assert!(
            err.contains("cannot read certificate") && err.contains("missing.pem"),
            "{err}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").expect("write");
        let err = message(load_certs(&empty).expect_err("no certificate"));
        assert!(err.contains("no CERTIFICATE block found"), "{err}");
        let err = message(load_key(&empty).expect_err("no key"));
        assert!(err.contains("no PRIVATE KEY block found"), "{err}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let err = message(load_key(&broken).expect_err("bad base64"));
        assert!(
            err.contains("bad PEM") && err.contains("broken.pem"),
            "{err}"
        );
    }
}
