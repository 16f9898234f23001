//! TCP reads and writes as system calls of our own, not libc's.
//!
//! In a process with more than one thread, glibc's `recv`, `send` and
//! `writev` are cancellation points: around each system call the thread is
//! marked cancellable and back, two atomic compare-and-swaps
//! (`__pthread_enable_asynccancel`). A proxied request makes four such
//! calls: 8.5 of the 71 atomic read-modify-writes it executed, and about
//! 230 instructions of wrapper (`bench/instructions.sh --locked`). Nothing
//! here cancels threads, so [rustix] makes the same system calls directly.
//!
//! tokio still tracks readiness, as its own `TcpStream` does: a read or
//! write waits for it, one that would block clears it, and so does a short
//! read or write (with epoll that shows the socket's buffer is drained or
//! full, and spares the system call that would only say so).

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustix::net::{RecvFlags, SendFlags};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream read and written with [`poll_read`] and [`poll_write`].
#[derive(Debug)]
pub struct Tcp(TcpStream);

impl Tcp {
    /// `stream`, from now on read and written directly.
    pub fn new(stream: TcpStream) -> Tcp {
        Tcp(stream)
    }

    /// The tokio stream, for what only it does (a `try_read` probe, options).
    pub fn get_ref(&self) -> &TcpStream {
        &self.0
    }

    /// A reading and a writing end, for use at once (both read and write
    /// through `&Tcp`).
    pub fn split(&self) -> (&Tcp, &Tcp) {
        (self, self)
    }
}

/// Reads into `buf` once the socket is readable.
pub fn poll_read(
    s: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    loop {
        ready!(s.poll_read_ready(cx))?;
        // SAFETY: `recv` writes initialised bytes only, and reports how
        // many it wrote; `assume_init` below is told no more than that.
        let unfilled = unsafe { buf.unfilled_mut() };
        let room = unfilled.len();
        match s.try_io(Interest::READABLE, || recv(s, unfilled)) {
            Ok(n) => {
                // SAFETY: `recv` initialised the first `n` unfilled bytes.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                if n > 0 && n < room {
                    drained(s, Interest::READABLE);
                }
                return Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Writes `bufs` (as one `writev`) once the socket is writable.
pub fn poll_write_vectored(
    s: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let len: usize = bufs.iter().map(|b| b.len()).sum();
    poll_write_with(s, cx, len, || {
        rustix::io::writev(s, bufs).map_err(io::Error::from)
    })
}

/// Writes `buf` once the socket is writable (no `SIGPIPE` on a closed peer).
pub fn poll_write(s: &TcpStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    poll_write_with(s, cx, buf.len(), || {
        rustix::net::send(s, buf, SendFlags::NOSIGNAL).map_err(io::Error::from)
    })
}

fn poll_write_with(
    s: &TcpStream,
    cx: &mut Context<'_>,
    len: usize,
    mut write: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(s.poll_write_ready(cx))?;
        match s.try_io(Interest::WRITABLE, &mut write) {
            Ok(n) => {
                if n > 0 && n < len {
                    drained(s, Interest::WRITABLE);
                }
                return Poll::Ready(Ok(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

fn recv(s: &TcpStream, into: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    let ((read, _), _) = rustix::net::recv(s, into, RecvFlags::empty())?;
    Ok(read.len())
}

/// Clears `interest`'s readiness: the next read or write waits for epoll.
fn drained(s: &TcpStream, interest: Interest) {
    let _ = s.try_io(interest, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
}

/// `AsyncRead` and `AsyncWrite` for `Tcp` and `&Tcp` alike.
macro_rules! stream_impls {
    ($($t:ty),*) => {$(
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read(&self.0, cx, buf)
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self.0, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_write_vectored(&self.0, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                let done = rustix::net::shutdown(&self.0, rustix::net::Shutdown::Write);
                Poll::Ready(done.map_err(io::Error::from))
            }
        }
    )*};
}

stream_impls!(Tcp, &Tcp);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A connected pair on loopback: ours (direct calls) and a plain peer.
    async fn pair() -> (Tcp, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (peer, _) = l.accept().await.unwrap();
        (Tcp::new(ours), peer)
    }

    #[tokio::test]
    async fn reads_and_writes_reach_the_peer_and_the_end_is_seen() {
        let (ours, mut peer) = pair().await;
        let (mut rd, mut wr) = ours.split();
        let parts = [IoSlice::new(b"GET / "), IoSlice::new(b"HTTP/1.1\r\n")];
        assert_eq!(wr.write_vectored(&parts).await.unwrap(), 16);
        wr.write_all(b"\r\n").await.unwrap();
        let mut got = [0u8; 18];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");
        peer.write_all(b"hello").await.unwrap();
        drop(peer);
        let mut buf = bytes::BytesMut::with_capacity(64);
        let mut total = 0;
        loop {
            let n = rd.read_buf(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
            assert!(total <= 5);
        }
        assert_eq!(&buf[..], b"hello", "then 0 at the peer's close");
    }

    #[tokio::test]
    async fn a_full_socket_makes_a_write_wait_until_the_peer_reads() {
        let (mut ours, mut peer) = pair().await;
        let block = vec![7u8; 64 * 1024 * 1024];
        let stuck = tokio::time::timeout(Duration::from_millis(300), ours.write_all(&block)).await;
        assert!(stuck.is_err(), "64 MiB fit in the socket buffers?");
        let reader = tokio::spawn(async move {
            let mut sink = vec![0u8; 1 << 20];
            let mut n = 0usize;
            loop {
                match peer.read(&mut sink).await.unwrap() {
                    0 => return n,
                    k => n += k,
                }
            }
        });
        let rest = b"the end";
        ours.write_all(rest).await.unwrap();
        ours.shutdown().await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .unwrap()
            .unwrap();
        assert!(read >= rest.len(), "the peer read {read} bytes and the end");
    }

    #[tokio::test]
    async fn writing_to_a_closed_peer_is_an_error() {
        let (mut ours, peer) = pair().await;
        drop(peer);
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = ours.write_all(b"anyone there?").await {
                failed = Some(e.kind());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            matches!(
                failed,
                Some(io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
            ),
            "{failed:?}"
        );
    }
}
