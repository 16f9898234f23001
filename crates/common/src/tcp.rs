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
//! Writes are `send` (one buffer) or `sendmsg` (several), never `writev`.
//! On a socket, `writev` first goes through the file layer (`vfs_writev`:
//! the file's position lookup, permission and notification hooks) and only
//! then to the same `sock_sendmsg`. At 1,000 connections perf put 1.3 µs
//! of a request's kernel time there, a twelfth of it, and CPU per request
//! fell 2 % without it (`bench/symbols.sh`, docs/BENCHMARKS.md).
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
    // SAFETY: `recv` writes initialised bytes only, and reports how many it
    // wrote; `assume_init` below is told no more than that.
    let unfilled = unsafe { buf.unfilled_mut() };
    let room = unfilled.len();
    let read = || recv(s, unfilled);
    let n = ready!(poll_io(s, cx, Interest::READABLE, room, read))?;
    // SAFETY: `recv` initialised the first `n` unfilled bytes.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Poll::Ready(Ok(()))
}

/// Writes the non-empty slices of `bufs` once the socket is writable: one
/// slice as a plain `send`, several as one `sendmsg` (neither raises
/// `SIGPIPE` on a closed peer).
///
/// Callers hand over fixed framings (head, chunk size, data, chunk end) of
/// which a request usually fills one or two, or a batch of body pieces
/// (none empty). The kernel copies in and walks every slice it is given,
/// and `send` skips the vector altogether, so empty ones are left out
/// ([`to_send`]); what does not fit one call waits for the next, as after
/// any partial write.
pub fn poll_write_vectored(
    s: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let mut parts = [IoSlice::new(&[]); MAX_PARTS];
    match to_send(bufs, &mut parts) {
        [] => Poll::Ready(Ok(0)),
        [one] => poll_write(s, cx, one),
        many => {
            let len: usize = many.iter().map(|b| b.len()).sum();
            poll_io(s, cx, Interest::WRITABLE, len, || {
                let mut no_control = rustix::net::SendAncillaryBuffer::default();
                rustix::net::sendmsg(s, many, &mut no_control, SendFlags::NOSIGNAL)
                    .map_err(io::Error::from)
            })
        }
    }
}

/// The most slices of a framing with empty ones left out that one write
/// passes to the kernel.
const MAX_PARTS: usize = 8;

/// The most slices one `sendmsg` takes (Linux's `UIO_MAXIOV`; more is
/// `EMSGSIZE`).
const MAX_SLICES: usize = 1024;

/// What one write passes to the kernel: the first [`MAX_PARTS`] non-empty
/// slices of `bufs`, copied into `into`; a longer list with none empty (a
/// batch of body pieces) as it is, up to [`MAX_SLICES`]. (The length is
/// compared first: a framing, on every request, is never that long.)
fn to_send<'b, 'a: 'b>(
    bufs: &'b [IoSlice<'a>],
    into: &'b mut [IoSlice<'a>; MAX_PARTS],
) -> &'b [IoSlice<'a>] {
    if bufs.len() > MAX_PARTS && bufs.iter().all(|b| !b.is_empty()) {
        &bufs[..bufs.len().min(MAX_SLICES)]
    } else {
        non_empty(bufs, into)
    }
}

/// The first [`MAX_PARTS`] non-empty slices of `bufs`, in order, in `into`.
fn non_empty<'b, 'a>(
    bufs: &[IoSlice<'a>],
    into: &'b mut [IoSlice<'a>; MAX_PARTS],
) -> &'b [IoSlice<'a>] {
    let mut n = 0;
    for b in bufs.iter().filter(|b| !b.is_empty()).take(MAX_PARTS) {
        into[n] = *b;
        n += 1;
    }
    &into[..n]
}

/// Writes `buf` once the socket is writable (no `SIGPIPE` on a closed peer).
pub fn poll_write(s: &TcpStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    poll_io(s, cx, Interest::WRITABLE, buf.len(), || {
        rustix::net::send(s, buf, SendFlags::NOSIGNAL).map_err(io::Error::from)
    })
}

/// Runs `op`, a read or write of at most `len` bytes, once the socket is
/// ready for `interest` (readable or writable).
///
/// A short read or write clears the readiness it was made on, by telling
/// `try_io` it would block: the buffer is drained, or the socket is full,
/// and the next call waits for epoll. Only that readiness is cleared. On a
/// multi-threaded runtime the driver may meanwhile have set a newer one,
/// for data that arrived or room that opened since; clearing that too (as
/// a second `try_io` after the call would) loses the edge while the data
/// sits in the socket. tokio's own `TcpStream` clears the same way.
fn poll_io(
    s: &TcpStream,
    cx: &mut Context<'_>,
    interest: Interest,
    len: usize,
    mut op: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        if interest.is_readable() {
            ready!(s.poll_read_ready(cx))?;
        } else {
            ready!(s.poll_write_ready(cx))?;
        }
        let mut short = None;
        let done = s.try_io(interest, || {
            let n = op()?;
            if n > 0 && n < len {
                short = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match (done, short) {
            (Ok(n), _) | (_, Some(n)) => return Poll::Ready(Ok(n)),
            (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
            (Err(e), None) => return Poll::Ready(Err(e)),
        }
    }
}

fn recv(s: &TcpStream, into: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    let ((read, _), _) = rustix::net::recv(s, into, RecvFlags::empty())?;
    Ok(read.len())
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

    /// A short write clears only the readiness it was made on. Here the
    /// room the peer opens while the short write is being made is taken by
    /// the driver on another thread before the write returns, and no other
    /// edge follows: the next write must still go through, not wait for an
    /// edge that never comes.
    #[test]
    fn room_that_opens_during_a_short_write_is_not_missed() {
        use std::io::Read;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        rt.block_on(async move {
            let ours = TcpStream::connect(addr).await.unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let block = vec![7u8; 64 * 1024 * 1024];
            let mut sink = vec![0u8; 1 << 20];
            let short = std::future::poll_fn(|cx| {
                poll_io(&ours, cx, Interest::WRITABLE, block.len(), || {
                    let n = rustix::net::send(&ours, &block, SendFlags::NOSIGNAL)?;
                    // The socket is full. The peer reads all of it, and the
                    // room that opens is an edge the idle worker's driver
                    // takes while this write has not returned yet.
                    let mut read = 0;
                    while read < n {
                        read += peer.read(&mut sink).unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    Ok(n)
                })
            })
            .await
            .unwrap();
            assert!(short < block.len(), "64 MiB fit in the socket buffers?");
            let next = tokio::time::timeout(
                Duration::from_secs(2),
                std::future::poll_fn(|cx| poll_write(&ours, cx, b"more")),
            )
            .await;
            assert!(
                matches!(next, Ok(Ok(4))),
                "the write after a short one waited for an edge already taken: {next:?}"
            );
        });
    }

    #[test]
    fn only_non_empty_slices_reach_the_kernel() {
        let lens = |bufs: &[IoSlice<'_>]| {
            let mut into = [IoSlice::new(&[]); MAX_PARTS];
            to_send(bufs, &mut into)
                .iter()
                .map(|b| b.len())
                .collect::<Vec<_>>()
        };
        let head = IoSlice::new(b"HTTP/1.1 200 OK\r\n\r\n");
        let (none, body) = (IoSlice::new(b""), IoSlice::new(b"hello\n"));
        assert_eq!(lens(&[head, none, body, none]), [19, 6]);
        assert_eq!(lens(&[head, none, none, none, none]), [19]);
        assert_eq!(lens(&[head, body]), [19, 6]);
        assert_eq!(lens(&[none, none]), Vec::<usize>::new());
        assert_eq!(lens(&[]), Vec::<usize>::new());
        // A framing with empty slices: at most eight of the rest.
        let nine: Vec<IoSlice<'_>> = [none].into_iter().chain([body; 9]).collect();
        assert_eq!(lens(&nine), [6; MAX_PARTS]);
        // A batch with none empty: as it is, up to the kernel's limit.
        assert_eq!(lens(&[body; 9]), [6; 9]);
        let many = vec![body; MAX_SLICES + 5];
        assert_eq!(lens(&many).len(), MAX_SLICES);
    }

    /// A batch of body pieces: more slices than a framing's eight, none
    /// empty, go in one call, up to the kernel's limit, in order.
    #[tokio::test]
    async fn a_long_list_of_slices_goes_in_one_call_up_to_the_kernels_limit() {
        let (ours, mut peer) = pair().await;
        let (_, mut wr) = ours.split();
        let pieces: Vec<[u8; 2]> = (0..1100u16).map(u16::to_be_bytes).collect();
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        assert_eq!(wr.write_vectored(&slices[..40]).await.unwrap(), 80);
        let n = wr.write_vectored(&slices[40..]).await.unwrap();
        assert_eq!(
            n,
            2 * MAX_SLICES,
            "capped at the kernel's limit, not refused"
        );
        let mut got = vec![0u8; 80 + n];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(got, pieces[..40 + MAX_SLICES].concat());
    }

    #[tokio::test]
    async fn a_vectored_write_with_empty_slices_sends_the_others_in_order() {
        let (ours, mut peer) = pair().await;
        let (_, mut wr) = ours.split();
        let none = IoSlice::new(b"");
        let one = [none, IoSlice::new(b"GET / HTTP/1.1\r\n"), none, none];
        assert_eq!(wr.write_vectored(&one).await.unwrap(), 16);
        let two = [IoSlice::new(b"\r\n"), none, IoSlice::new(b"body"), none];
        assert_eq!(wr.write_vectored(&two).await.unwrap(), 6);
        assert_eq!(wr.write_vectored(&[none, none]).await.unwrap(), 0);
        let mut got = [0u8; 22];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\nbody");
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
