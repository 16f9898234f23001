//! Lingering close (nginx `lingering_close`): after an answer sent while
//! part of the request was unread (400, 408, 413, an early upstream
//! answer), shut our write side and read and discard what the client still
//! sends, for at most `lingering_time` and while bytes keep coming within
//! `lingering_timeout`. Closing at once would make the kernel reset the
//! connection over the unread bytes, and the client would see a broken
//! pipe instead of our answer.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::io::ClientIo;
use super::super::lifecycle::{Event, Lifecycle, Timer};

/// Runs the lingering close; returns when it is over (the caller drops
/// `io`), with the timer that ended it, if one did.
pub(super) async fn linger(
    io: &mut ClientIo,
    life: &mut Lifecycle,
    scratch: &mut BytesMut,
) -> Option<Timer> {
    let (at, timer) = life.deadline()?;
    if tokio::time::timeout_at(at, io.shutdown()).await.is_err() {
        return Some(timer);
    }
    scratch.clear();
    scratch.reserve(16 * 1024);
    while let Some((at, timer)) = life.deadline() {
        scratch.clear();
        match tokio::time::timeout_at(at, io.read_buf(scratch)).await {
            Ok(Ok(n)) if n > 0 => {
                life.step(Event::Traffic, crate::clock::now());
            }
            Err(_) => {
                life.step(Event::Expired, crate::clock::now());
                return Some(timer);
            }
            _ => return None,
        }
    }
    None
}
