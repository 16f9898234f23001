//! Turns `stackd demo-backend` flags and an optional file into one
//! `[demo_backend]` config, validated like a file would be.

use std::path::Path;

use stackd_common::config::{parse_duration, DemoBackendConfig, Findings, KeyPath, Section};
use stackd_common::Config;

use crate::cli::DemoBackendArgs;

pub fn resolve(a: &DemoBackendArgs) -> anyhow::Result<DemoBackendConfig> {
    let mut cfg = match &a.config {
        Some(path) => {
            let file = crate::load_for(path, Section::DemoBackend)?;
            Config::require(
                path,
                Section::DemoBackend,
                file.config.demo_backend.as_ref(),
            )?
            .clone()
        }
        None => {
            let (Some(node_id), Some(redis)) = (&a.node_id, &a.redis) else {
                anyhow::bail!(
                    "demo-backend needs --config FILE, or both --node-id and --redis (e.g. --node-id 137server1 --redis redis://127.0.0.1:6379/)"
                );
            };
            let text = format!("[demo_backend]\nnode_id = {node_id:?}\nredis = {redis:?}\n");
            Config::from_toml_str(&text, Path::new("<command line>"))?
                .demo_backend
                .ok_or_else(|| anyhow::anyhow!("internal: no [demo_backend] from flags"))?
        }
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(n) = &a.node_id {
        cfg.node_id.clone_from(n);
    }
    if let Some(r) = &a.redis {
        if stackd_common::config::secret::url_has_password(r) {
            tracing::warn!("--redis carries a password, which every local user can read in ps; put redis_password_file in a config file instead");
        }
        cfg.redis.clone_from(r);
    }
    if let Some(t) = &a.session_ttl {
        cfg.session_ttl = parse_duration(t).map_err(|e| anyhow::anyhow!("--session-ttl: {e}"))?;
    }
    let mut findings = Findings::default();
    cfg.validate(&KeyPath::root("demo_backend"), &mut findings);
    if let Some(f) = findings.errors.first() {
        anyhow::bail!(
            "{}: {}{}",
            f.path,
            f.message,
            if findings.errors.len() > 1 {
                " (and more)"
            } else {
                ""
            }
        );
    }
    Ok(cfg)
}
