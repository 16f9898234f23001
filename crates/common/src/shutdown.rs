//! Process signals as values services can `select!` on.
//!
//! One root [`CancellationToken`] is cancelled on SIGTERM or SIGINT; every
//! subsystem takes a `child_token()`. SIGHUP is a stream of reload requests,
//! SIGUSR1 one of log-reopen requests, SIGUSR2 one of upgrade requests
//! (the proxy) or a signal that is logged and ignored (the others): none of
//! the signals an operator sends by habit kills a service (SPEC.md's table).
//! Services receive these as arguments and never install handlers themselves,
//! so tests can drive shutdown and reload without signals.

use std::io;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGTERM or SIGINT.
///
/// Must be called inside a Tokio runtime.
pub fn shutdown_token() -> io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let t = token.clone();
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = which, "shutting down");
        t.cancel();
    });
    Ok(token)
}

/// One message per `kind` signal, logged with `what`; bounded to one
/// pending message (two requests in a row are the same as one).
/// Installing it keeps the signal's default action (exit) from happening.
fn requests(kind: SignalKind, what: &'static str) -> io::Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel(1);
    let mut sig = signal(kind)?;
    tokio::spawn(async move {
        while sig.recv().await.is_some() {
            tracing::info!("{what}");
            if tx.try_send(()).is_err() && tx.is_closed() {
                break;
            }
        }
    });
    Ok(rx)
}

/// A stream of reload requests: one message per SIGHUP.
pub fn reload_requests() -> io::Result<mpsc::Receiver<()>> {
    requests(SignalKind::hangup(), "SIGHUP: reload requested")
}

/// A stream of log-reopen requests: one message per SIGUSR1 (logrotate's
/// `postrotate` signal, as for nginx).
pub fn reopen_requests() -> io::Result<mpsc::Receiver<()>> {
    requests(SignalKind::user_defined1(), "SIGUSR1: reopening log files")
}

/// A stream of binary-upgrade requests: one message per SIGUSR2 (nginx's
/// signal for it).
pub fn upgrade_requests() -> io::Result<mpsc::Receiver<()>> {
    requests(
        SignalKind::user_defined2(),
        "SIGUSR2: binary upgrade requested",
    )
}

/// Logs and otherwise ignores `kind` (SIGUSR2 outside the proxy, SIGHUP
/// where nothing reloads), so that it does not kill the process.
pub fn ignore(kind: SignalKind, what: &'static str) -> io::Result<()> {
    let mut rx = requests(kind, what)?;
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Ok(())
}

pub use tokio::signal::unix::SignalKind as Kind;
