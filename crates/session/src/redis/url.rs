//! Session store URLs, parsed without touching the network.
//!
//! ```text
//! redis://[user:pass@]host[:6379][/db]          one server (the redis crate parses it)
//! rediss://...                                  the same over TLS
//! redis+sentinel://[user:pass@]h1[:26379],h2/master[/db]
//! rediss+sentinel://...                         TLS to sentinels and master
//! redis+cluster://[user:pass@]h1[:6379],h2      seed nodes of a Redis Cluster
//! rediss+cluster://...
//! memory://                                     this process only
//! ```
//! Credentials go to the data nodes (master, cluster nodes); sentinels are
//! expected to run without a password, as in the stock redis-sentinel setup.
//! TLS trusts the system store, or `[demo_backend] redis_ca_file` for a
//! private CA (data nodes only; sentinels over TLS need a system-trusted CA).
//! Messages show URLs through [`stackd_common::config::redact_url`], which
//! hides any password.

use stackd_common::config::redact_url as redact;

/// Where sessions live, as the URL said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Memory,
    /// A URL the redis crate understands directly (`redis://`, `rediss://`).
    Single(String),
    Sentinel {
        /// `redis://host:port` of each sentinel.
        sentinels: Vec<String>,
        master: String,
        /// `redis://[user:pass@]127.0.0.1:6379/db`: only credentials and db are used
        /// (the address is a placeholder; the sentinels name the master).
        node: String,
        tls: bool,
    },
    /// `redis[s]://[user:pass@]host:port` of each seed node.
    Cluster(Vec<String>),
}

/// Why a store URL is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("{0:?} is not a session store URL (expected redis://, rediss://, redis+sentinel://, redis+cluster:// or memory://)")]
    Scheme(String),
    #[error("{url:?}: {why}")]
    Shape { url: String, why: &'static str },
}

// === impl Target ===

impl Target {
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let shape = |why| UrlError::Shape {
            url: redact(url),
            why,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::Scheme(redact(url)))?;
        let tls = scheme.starts_with("rediss");
        let data_scheme = if tls { "rediss" } else { "redis" };
        match scheme {
            "memory" => Ok(Target::Memory),
            "redis" | "rediss" => Ok(Target::Single(url.to_owned())),
            "redis+sentinel" | "rediss+sentinel" => {
                let (auth, hosts, path) = split(rest);
                let mut parts = path.split('/').filter(|p| !p.is_empty());
                let master = parts.next().ok_or_else(|| shape("name the master after the hosts: redis+sentinel://h1:26379,h2:26379/mymaster"))?;
                let db = parts.next().unwrap_or("0");
                if db.parse::<u32>().is_err() || parts.next().is_some() {
                    return Err(shape(
                        "after the master name only a database number may follow, e.g. /mymaster/0",
                    ));
                }
                let sentinels = hosts_of(hosts, 26379, data_scheme, "")
                    .ok_or_else(|| shape("list sentinels as host[:port] separated by commas"))?;
                Ok(Target::Sentinel {
                    sentinels,
                    master: master.to_owned(),
                    node: format!("{data_scheme}://{auth}127.0.0.1:6379/{db}"),
                    tls,
                })
            }
            "redis+cluster" | "rediss+cluster" => {
                let (auth, hosts, path) = split(rest);
                if !path.trim_matches('/').is_empty() {
                    return Err(shape("a cluster has no database number; remove the path"));
                }
                hosts_of(hosts, 6379, data_scheme, auth)
                    .map(Target::Cluster)
                    .ok_or_else(|| shape("list cluster nodes as host[:port] separated by commas"))
            }
            _ => Err(UrlError::Scheme(redact(url))),
        }
    }
}

/// `user:pass@hosts/path` -> (`user:pass@` or "", hosts, path).
fn split(rest: &str) -> (&str, &str, &str) {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    match authority.rsplit_once('@') {
        Some((auth, hosts)) => (&rest[..auth.len() + 1], hosts, path),
        None => ("", authority, path),
    }
}

fn hosts_of(hosts: &str, default_port: u16, scheme: &str, auth: &str) -> Option<Vec<String>> {
    let out: Option<Vec<String>> = hosts
        .split(',')
        .map(|h| {
            let h = h.trim();
            let (host, port) = match h.rsplit_once(':') {
                Some((host, port)) if !host.ends_with(':') => (host, port.parse::<u16>().ok()?),
                _ => (h, default_port),
            };
            (!host.is_empty() && !host.contains(['/', '@', ' ']))
                .then(|| format!("{scheme}://{auth}{host}:{port}"))
        })
        .collect();
    out.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(Target::parse("memory://"), Ok(Target::Memory));
        assert_eq!(
            Target::parse("redis://h:1/2"),
            Ok(Target::Single("redis://h:1/2".into()))
        );
        assert_eq!(
            Target::parse("redis+sentinel://u:p@a:26380,b/mymaster/3"),
            Ok(Target::Sentinel {
                sentinels: vec!["redis://a:26380".into(), "redis://b:26379".into()],
                master: "mymaster".into(),
                node: "redis://u:p@127.0.0.1:6379/3".into(),
                tls: false,
            })
        );
        assert_eq!(
            Target::parse("rediss+cluster://:pw@a:7000,b"),
            Ok(Target::Cluster(vec![
                "rediss://:pw@a:7000".into(),
                "rediss://:pw@b:6379".into()
            ]))
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(matches!(
            Target::parse("http://x"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(Target::parse("nourl"), Err(UrlError::Scheme(_))));
        for bad in [
            "redis+sentinel://a,b",
            "redis+sentinel://a/m/x",
            "redis+cluster://a/0",
            "redis+cluster://",
            "redis+sentinel://a:notaport/m",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(UrlError::Shape { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "redis+cluster://u:secret@h/0",
            "redis+cluster://u:sec/ret@h/0",
            "nope://:se/cret@h",
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(
                !e.contains("secret") && !e.contains("sec/ret") && !e.contains("se/cret"),
                "{e}"
            );
        }
    }
}
