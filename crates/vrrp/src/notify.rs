//! Notifications on state changes that last: a script, a webhook, an e-mail.
//!
//! One notifier task per instance. The driver hands it every transition
//! without waiting ([`NotifyHandle::transition`] overwrites a `watch`
//! slot, so a storm costs the driver nothing and the notifier only ever
//! sees the latest state); the task decides with a [`Coalescer`] what to
//! announce and when, and delivers one notice at a time, in order. Each
//! channel (script, webhook, mail) has a deadline and only logs its failure:
//! a hung script or a dead SMTP server never delays a failover.
//!
//! At shutdown [`NotifyHandle::finish`] hands over the STOP notice and waits
//! (bounded by [`STOP_DEADLINE`]) until it is delivered, so the operator's
//! script does run before the process exits.
//!
//! ```text
//!  driver ──transition──► watch(latest, seq) ──► notifier task: Coalescer ──► script │ webhook │ mail
//!  driver ──finish(STOP)─────────────────────────► (deliver now, then exit) ──► driver awaits it
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use stackd_common::config::ha::EmailConfig;
use stackd_common::http_client::HttpClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::coalesce::{Coalescer, Poll};
use crate::state::State;
use crate::status::Metrics;

/// A state as keepalived's notify names it: INIT never appears, STOP does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Announced {
    Master,
    Backup,
    Fault,
    /// The instance stopped (a transition to Initialize only happens at shutdown).
    Stop,
}

/// What happened, as sent to the webhook (JSON) and the mail body.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Notice {
    pub instance: String,
    pub state: Announced,
    pub previous: State,
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

/// How often and when notices go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// A state must last this long to be announced.
    pub settle: Duration,
    /// At least this long between two announcements.
    pub min_gap: Duration,
}

/// The driver's end of one instance's notifier task.
pub struct NotifyHandle {
    slot: watch::Sender<Option<(u64, Notice)>>,
    seq: u64,
    task: JoinHandle<()>,
}

const SCRIPT_DEADLINE: Duration = Duration::from_secs(30);
const WEBHOOK_DEADLINE: Duration = Duration::from_secs(5);
/// The STOP notice must be delivered within this, well inside systemd's
/// `TimeoutStopSec=10` of the shipped unit.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);

// === impl Announced ===

impl Announced {
    pub fn of(s: State) -> Announced {
        match s {
            State::Initialize => Announced::Stop,
            State::Backup => Announced::Backup,
            State::Master => Announced::Master,
            State::Fault => Announced::Fault,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Announced::Master => "MASTER",
            Announced::Backup => "BACKUP",
            Announced::Fault => "FAULT",
            Announced::Stop => "STOP",
        }
    }
}

// === impl Pace ===

impl Pace {
    /// A state lasts once it survived one advert interval (at most 1 s), and
    /// announcements are at least 1 s apart.
    pub fn for_interval(advert_int: Duration) -> Pace {
        Pace {
            settle: advert_int.min(Duration::from_secs(1)),
            min_gap: Duration::from_secs(1),
        }
    }
}

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

    /// Starts this instance's notifier task.
    pub(crate) fn start(self, pace: Pace, metrics: Metrics) -> NotifyHandle {
        let (slot, rx) = watch::channel(None);
        let task = tokio::spawn(self.run(rx, pace, metrics));
        NotifyHandle { slot, seq: 0, task }
    }

    async fn run(
        self,
        mut rx: watch::Receiver<Option<(u64, Notice)>>,
        pace: Pace,
        metrics: Metrics,
    ) {
        let epoch = Instant::now();
        let mut c = Coalescer::new(pace.settle, pace.min_gap, |n: &Notice| n.state);
        let mut seen = 0u64;
        let mut wake: Option<Instant> = None;
        let mut last: Option<Notice> = None;
        loop {
            let closed = tokio::select! {
                r = rx.changed() => r.is_err(),
                _ = at(wake) => false,
            };
            if let Some((seq, n)) = rx.borrow_and_update().clone() {
                if seq > seen {
                    c.skipped(seq - seen - 1);
                    seen = seq;
                    last = Some(n.clone());
                    if !closed {
                        c.observe(n, epoch.elapsed());
                    }
                }
            }
            if closed {
                // The driver finished: announce STOP now, bounded.
                let stop = last.filter(|n| n.state == Announced::Stop);
                if let Some(n) = stop.and_then(|n| c.stop(n, epoch.elapsed())) {
                    let _ = tokio::time::timeout(STOP_DEADLINE, self.deliver(&n)).await;
                    metrics.notified(&n.instance);
                    metrics.coalesced(&n.instance, c.coalesced());
                }
                return;
            }
            wake = match c.poll(epoch.elapsed()) {
                Poll::Deliver(n) => {
                    self.deliver(&n).await;
                    metrics.notified(&n.instance);
                    match c.poll(epoch.elapsed()) {
                        Poll::Wait(t) => Some(epoch + t),
                        _ => None,
                    }
                }
                Poll::Wait(t) => Some(epoch + t),
                Poll::Idle => None,
            };
            if let Some(n) = &last {
                metrics.coalesced(&n.instance, c.coalesced());
            }
        }
    }

    /// Sends `n` everywhere configured, concurrently, each within its deadline.
    pub async fn deliver(&self, n: &Notice) {
        tokio::join!(self.script(n), self.webhook(n), self.mail(n));
    }

    async fn script(&self, n: &Notice) {
        let Some(script) = &self.script else { return };
        // keepalived's `notify`: <script> INSTANCE <name> <state> <priority>
        let run = crate::child::command(script)
            .args([
                "INSTANCE",
                &n.instance,
                n.state.as_str(),
                &n.priority.to_string(),
            ])
            .status();
        match tokio::time::timeout(SCRIPT_DEADLINE, run).await {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => {
                tracing::warn!(script = %script.display(), status = %s, "notify script failed")
            }
            Ok(Err(e)) => {
                tracing::warn!(script = %script.display(), error = %e, "notify script did not start")
            }
            Err(_) => tracing::warn!(
                script = %script.display(),
                "notify script killed after {SCRIPT_DEADLINE:?}"
            ),
        }
    }

    async fn webhook(&self, n: &Notice) {
        let Some(url) = &self.webhook else { return };
        let body = serde_json::to_vec(n).unwrap_or_default();
        match self.http.post_json(url, body, WEBHOOK_DEADLINE).await {
            Ok(r) if r.status.is_success() => {}
            Ok(r) => tracing::warn!(%url, status = %r.status, "notify webhook refused"),
            Err(e) => tracing::warn!(error = %e, "notify webhook failed"),
        }
    }

    async fn mail(&self, n: &Notice) {
        let Some(cfg) = &self.email else { return };
        if let Err(e) = mail(cfg, n).await {
            tracing::warn!(server = %cfg.smtp_server, error = %e, "notification e-mail failed");
        }
    }
}

async fn at(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

// === impl NotifyHandle ===

impl NotifyHandle {
    /// Hands a transition to the notifier; never waits.
    pub fn transition(&mut self, n: Notice) {
        self.seq += 1;
        self.slot.send_replace(Some((self.seq, n)));
    }

    /// Hands over the last notice (STOP) and waits until it is delivered.
    pub async fn finish(self) {
        let NotifyHandle { slot, task, .. } = self;
        drop(slot);
        let bound = STOP_DEADLINE + Duration::from_secs(1);
        if tokio::time::timeout(bound, task).await.is_err() {
            tracing::warn!("the STOP notification did not finish within {bound:?}");
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
    let state = n.state.as_str();
    let mut msg = Message::builder()
        .from(cfg.from.parse().map_err(|e| format!("from: {e}"))?)
        .subject(format!(
            "[{}] {} is now {state} ({})",
            n.host, n.instance, n.reason
        ));
    for to in &cfg.to {
        msg = msg.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
    }
    let body = format!(
        "host: {}\ninstance: {}\nstate: {state} (was {})\npriority: {}\nreason: {}\n",
        n.host, n.instance, n.previous, n.priority, n.reason
    );
    let msg = msg.body(body).map_err(|e| e.to_string())?;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(cfg.timeout))
        .build();
    smtp.send(msg).await.map(|_| ()).map_err(|e| e.to_string())
}

/// This host's name, for notices.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
