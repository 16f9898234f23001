//! Notifications on every state change: a script, a webhook, an e-mail.
//!
//! Each runs on its own task with a deadline and only logs its failure: a
//! hung notify script or a dead SMTP server must never delay a failover.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use stackd_common::config::ha::EmailConfig;
use stackd_common::http_client::HttpClient;

/// What happened, as sent to the webhook (JSON) and the mail body.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Notice {
    pub instance: String,
    /// MASTER, BACKUP, FAULT or STOP (keepalived's names).
    pub state: String,
    pub previous: String,
    pub priority: u8,
    pub reason: String,
    pub host: String,
}

/// Where notices go, for one instance.
#[derive(Clone)]
pub struct Notifier {
    pub script: Option<PathBuf>,
    pub webhook: Option<String>,
    pub email: Option<EmailConfig>,
    pub http: HttpClient,
}

const SCRIPT_DEADLINE: Duration = Duration::from_secs(30);
const WEBHOOK_DEADLINE: Duration = Duration::from_secs(5);

// === impl Notifier ===

impl Notifier {
    /// A notifier that sends nothing until its fields are set.
    pub fn new(http: HttpClient) -> Notifier {
        Notifier {
            script: None,
            webhook: None,
            email: None,
            http,
        }
    }

    /// Fires every configured notification in the background.
    pub fn send(&self, n: Notice) {
        if let Some(script) = self.script.clone() {
            let n = n.clone();
            tokio::spawn(async move {
                // keepalived's `notify`: <script> INSTANCE <name> <state> <priority>
                let run = tokio::process::Command::new(&script)
                    .args(["INSTANCE", &n.instance, &n.state, &n.priority.to_string()])
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status();
                match tokio::time::timeout(SCRIPT_DEADLINE, run).await {
                    Ok(Ok(s)) if s.success() => {}
                    Ok(Ok(s)) => {
                        tracing::warn!(script = %script.display(), status = %s, "notify script failed")
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(script = %script.display(), error = %e, "notify script did not start")
                    }
                    Err(_) => {
                        tracing::warn!(script = %script.display(), "notify script killed after {SCRIPT_DEADLINE:?}")
                    }
                }
            });
        }
        if let Some(url) = self.webhook.clone() {
            let body = serde_json::to_vec(&n).unwrap_or_default();
            let http = self.http.clone();
            tokio::spawn(async move {
                match http.post_json(&url, body, WEBHOOK_DEADLINE).await {
                    Ok(r) if r.status.is_success() => {}
                    Ok(r) => tracing::warn!(%url, status = %r.status, "notify webhook refused"),
                    Err(e) => tracing::warn!(error = %e, "notify webhook failed"),
                }
            });
        }
        if let Some(cfg) = self.email.clone() {
            tokio::spawn(async move {
                if let Err(e) = mail(&cfg, &n).await {
                    tracing::warn!(server = %cfg.smtp_server, error = %e, "notification e-mail failed");
                }
            });
        }
    }
}

/// Plain SMTP (no TLS, no auth), as keepalived's `smtp_server`.
async fn mail(cfg: &EmailConfig, n: &Notice) -> Result<(), String> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let (host, port) = cfg
        .smtp_server
        .rsplit_once(':')
        .ok_or("smtp_server is not host:port")?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad port in {}", cfg.smtp_server))?;
    let mut msg = Message::builder()
        .from(cfg.from.parse().map_err(|e| format!("from: {e}"))?)
        .subject(format!(
            "[{}] {} is now {} ({})",
            n.host, n.instance, n.state, n.reason
        ));
    for to in &cfg.to {
        msg = msg.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
    }
    let body = format!(
        "host: {}\ninstance: {}\nstate: {} (was {})\npriority: {}\nreason: {}\n",
        n.host, n.instance, n.state, n.previous, n.priority, n.reason
    );
    let msg = msg.body(body).map_err(|e| e.to_string())?;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(cfg.timeout))
        .build();
    smtp.send(msg).await.map(|_| ()).map_err(|e| e.to_string())
}

/// This host's name, for notices.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
