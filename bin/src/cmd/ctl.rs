//! `stackd ctl drain|disable|enable UPSTREAM SERVER`: one call to the proxy's
//! admin listener, which takes it only from loopback.

use std::process::ExitCode;
use std::time::Duration;

use stackd_common::config::Section;
use stackd_common::Config;

use crate::admin_client;
use crate::cli::CtlArgs;

pub async fn run(a: &CtlArgs) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(&a.config)?;
    let proxy = Config::require(&a.config, Section::Proxy, cfg.proxy.as_ref())?;
    let Some(admin) = proxy.admin else {
        return Err(super::no_admin(&a.config, "[proxy]").into());
    };
    let path = ctl_path(a.action.name(), &a.upstream, &a.server.to_string());
    let answer = admin_client::post(admin, &path, Duration::from_secs(5))
        .await
        .map_err(|e| anyhow::anyhow!("proxy admin {admin}: {e}"))?;
    let body = answer.body.trim();
    if answer.status == 200 {
        println!("{body}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("stackd ctl: the proxy refused ({}): {body}", answer.status);
        Ok(ExitCode::FAILURE)
    }
}

/// `/ctl/<action>?upstream=<name>&server=<addr>`, percent-encoded.
pub fn ctl_path(action: &str, upstream: &str, server: &str) -> String {
    format!(
        "/ctl/{action}?upstream={}&server={}",
        encode(upstream),
        encode(server)
    )
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:[]".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded() {
        assert_eq!(
            ctl_path("drain", "tom cats&x", "192.0.2.137:8080"),
            "/ctl/drain?upstream=tom%20cats%26x&server=192.0.2.137:8080"
        );
    }
}
