//! Process signals as values services can `select!` on.
//!
//! One root [`CancellationToken`] is cancelled on SIGTERM or SIGINT; every
//! subsystem takes a `child_token()`. SIGHUP is a stream of reload requests,
//! SIGUSR1 one of log-reopen requests.
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

/// A stream of reload requests: one message per SIGHUP.
///
/// Bounded to one pending request: reloading twice in a row is the same as once.
pub fn reload_requests() -> io::Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel(1);
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reload requested");
            if tx.try_send(()).is_err() && tx.is_closed() {
                break;
            }
        }
    });
    Ok(rx)
}

/// A stream of log-reopen requests: one message per SIGUSR1 (logrotate's
/// `postrotate` signal, as for nginx). Installing it also keeps SIGUSR1,
/// which an operator sends by habit, from killing the process.
pub fn reopen_requests() -> io::Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel(1);
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            tracing::info!("SIGUSR1: reopening log files");
            if tx.try_send(()).is_err() && tx.is_closed() {
                break;
            }
        }
    });
    Ok(rx)
}
