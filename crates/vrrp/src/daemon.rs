//! The daemon around the instances: starting them, SIGHUP reloads
//! (instance by instance, by name), the SIGUSR1 state dump, the systemd
//! watchdog and readiness, and the stop.
//!
//! ```text
//!   reloads (HaSpec) ──► same router, new values ─► Driver::reloader (in place)
//!                    ├─► new router (interface, VRID, version, peers) ─► stop old, start new
//!                    └─► gone ─► stop (priority 0, VIPs removed)
//!   watchdog tick ──► every loop turned lately? ─► WATCHDOG=1
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use stackd_common::admin::Admin;
use stackd_common::config::ha::{EmailConfig, HaSpec, InstanceSpec};
use stackd_common::http_client::HttpClient;
use stackd_common::{systemd, CancellationToken};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::driver::{Reload, HEARTBEAT};
use crate::status::{self, Metrics, SharedStatus};
use crate::{setup, HaError};

/// What the process hands `stackd ha` besides its spec.
#[derive(Debug)]
pub struct Inputs {
    pub shutdown: CancellationToken,
    /// SIGHUP: a new spec, already checked (a bad file never gets here).
    pub reloads: mpsc::Receiver<HaSpec>,
    /// SIGUSR1: reopen log files and log every instance's state
    /// (keepalived's data dump).
    pub dumps: mpsc::Receiver<()>,
}

/// One running instance.
struct Running {
    spec: InstanceSpec,
    stop: CancellationToken,
    probes: CancellationToken,
    reload: mpsc::Sender<Reload>,
    status: SharedStatus,
    heartbeat: (Instant, Arc<AtomicU64>),
    task: JoinHandle<()>,
}

/// Everything the instances share.
struct Daemon {
    metrics: Metrics,
    http: HttpClient,
    email: Option<EmailConfig>,
    shutdown: CancellationToken,
    running: Vec<Running>,
    statuses: Arc<Mutex<Vec<SharedStatus>>>,
}

/// Runs every instance of `spec` until `inputs.shutdown`.
pub(crate) async fn run_with(spec: HaSpec, mut inputs: Inputs) -> Result<(), HaError> {
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut d = Daemon {
        metrics,
        // One pool for every tracking check and webhook of this daemon.
        http: HttpClient::new("stackd-ha"),
        email: spec.email.clone(),
        shutdown: inputs.shutdown.clone(),
        running: Vec::new(),
        statuses: Arc::new(Mutex::new(Vec::new())),
    };
    for inst in &spec.instances {
        d.start(inst)?;
    }
    d.publish();
    let admin = spec.admin;
    if let Some(addr) = admin {
        serve_admin(addr, registry, d.statuses.clone(), &inputs.shutdown).await?;
    }
    systemd::ready(&format!("{} instance(s)", d.running.len()));
    let mut watchdog = systemd::watchdog_interval().map(tokio::time::interval);
    loop {
        tokio::select! {
            _ = inputs.shutdown.cancelled() => break,
            Some(next) = inputs.reloads.recv() => {
                if next.admin != admin {
                    tracing::warn!("a new [ha] admin address takes effect after a restart");
                }
                d.reload(next).await;
            }
            Some(()) = inputs.dumps.recv() => d.dump(),
            _ = tick(&mut watchdog) => d.feed_watchdog(watchdog.as_ref().map(|w| w.period())),
        }
    }
    systemd::stopping("stopping: priority 0, removing the VIPs");
    for r in d.running.drain(..) {
        let _ = r.task.await;
    }
    Ok(())
}

async fn tick(w: &mut Option<tokio::time::Interval>) {
    match w {
        Some(w) => {
            w.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn serve_admin(
    addr: SocketAddr,
    registry: Registry,
    statuses: Arc<Mutex<Vec<SharedStatus>>>,
    shutdown: &CancellationToken,
) -> Result<(), HaError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HaError::Admin { addr, source })?;
    let admin = Admin::new(Arc::new(registry)).status(move || status::render(&lock(&statuses)));
    tokio::spawn(admin.serve(listener, shutdown.child_token()));
    tracing::info!(%addr, "ha admin listening");
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Whether `new` is the same virtual router as `old` (else: restart it).
fn same_router(old: &InstanceSpec, new: &InstanceSpec) -> bool {
    old.interface == new.interface
        && old.vrid == new.vrid
        && old.version == new.version
        && old.unicast_peers == new.unicast_peers
        && old.unicast_src_ip == new.unicast_src_ip
}

// === impl Daemon ===

impl Daemon {
    fn start(&mut self, inst: &InstanceSpec) -> Result<(), HaError> {
        let built = setup::instance(
            inst,
            self.email.clone(),
            self.metrics.clone(),
            &self.http,
            &self.shutdown,
        )?;
        let stop = self.shutdown.child_token();
        let r = Running {
            spec: inst.clone(),
            status: built.driver.status(),
            heartbeat: built.driver.heartbeat(),
            reload: built.driver.reloader(),
            probes: built.probes,
            task: tokio::spawn(built.driver.run(built.samples, stop.clone())),
            stop,
        };
        self.running.push(r);
        Ok(())
    }

    /// `/status` lists the running instances.
    fn publish(&self) {
        *lock(&self.statuses) = self.running.iter().map(|r| r.status.clone()).collect();
    }

    async fn stop(r: Running) {
        r.stop.cancel();
        r.probes.cancel();
        let _ = r.task.await;
    }

    async fn reload(&mut self, spec: HaSpec) {
        self.email = spec.email.clone();
        let mut old: Vec<Running> = std::mem::take(&mut self.running);
        // Gone first: a VRID that moves between instances must be free.
        let (gone, kept): (Vec<Running>, Vec<Running>) = old
            .drain(..)
            .partition(|r| !spec.instances.iter().any(|i| i.name == r.spec.name));
        for r in gone {
            tracing::info!(instance = %r.spec.name, "reload: instance removed");
            Daemon::stop(r).await;
        }
        let mut kept = kept;
        for inst in &spec.instances {
            let Some(pos) = kept.iter().position(|r| r.spec.name == inst.name) else {
                tracing::info!(instance = %inst.name, "reload: instance added");
                if let Err(e) = self.start(inst) {
                    tracing::error!(error = %e, "reload: cannot start the instance");
                }
                continue;
            };
            let mut r = kept.swap_remove(pos);
            if r.spec == *inst {
                self.running.push(r);
            } else if same_router(&r.spec, inst) {
                r.probes.cancel();
                let (samples, probes) = setup::probes(inst, &self.http, &self.shutdown);
                let notifier = setup::notifier(inst, self.email.clone(), &self.http);
                let msg = Reload {
                    spec: inst.clone(),
                    samples,
                    notifier,
                };
                if r.reload.send(msg).await.is_err() {
                    tracing::error!(instance = %inst.name, "reload: the instance is not running");
                }
                r.probes = probes;
                r.spec = inst.clone();
                self.running.push(r);
            } else {
                tracing::info!(instance = %inst.name, "reload: interface, VRID, version or peers changed: restarting the instance");
                Daemon::stop(r).await;
                if let Err(e) = self.start(inst) {
                    tracing::error!(error = %e, "reload: cannot start the instance");
                }
            }
        }
        self.publish();
        systemd::reloaded(
            true,
            &format!("{} instance(s), reloaded", self.running.len()),
        );
    }

    /// keepalived writes /tmp/keepalived.data on SIGUSR1; we log the same
    /// picture, one line per instance, as `/status` shows it.
    fn dump(&self) {
        for (path, e) in stackd_common::logfile::reopen_all() {
            tracing::error!(path = %path.display(), error = %e, "cannot reopen the log file");
        }
        for r in &self.running {
            let json = serde_json::to_string(&*lock(&r.status)).unwrap_or_default();
            tracing::info!(target: "dump", instance = %r.spec.name, state = %json, "SIGUSR1 state dump");
        }
    }

    /// Feeds systemd's watchdog only while every instance's loop turns.
    fn feed_watchdog(&self, period: Option<Duration>) {
        let limit = period.unwrap_or(HEARTBEAT).max(HEARTBEAT * 4);
        let stalled: Vec<&str> = self
            .running
            .iter()
            .filter(|r| {
                let (epoch, beat) = &r.heartbeat;
                let age = epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(beat.load(Ordering::Relaxed)));
                age > limit
            })
            .map(|r| r.spec.name.as_str())
            .collect();
        if stalled.is_empty() {
            systemd::watchdog();
        } else {
            tracing::error!(
                ?stalled,
                "an instance loop is stuck: not feeding the systemd watchdog"
            );
        }
    }
}
