//! Message framing (RFC 9112 §6): where a body ends, and the chunked coding.
//!
//! [`Decoder`] is a pure state machine over a buffer: it hands out body
//! bytes as they become available and says when it needs more or when the
//! body has ended. It never reads past the body's end, so whatever follows
//! in the buffer is the next message (or, after an early response, bytes we
//! will never parse). Chunk-size lines are parsed strictly: hex digits,
//! an optional extension of visible characters, CRLF. httparse's
//! `parse_chunk_size` accepts a size line without digits; ours does not.

use bytes::{Buf, Bytes, BytesMut};

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (bodyless request, HEAD response, 1xx/204/304).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Responses only: the body runs until the server closes (RFC 9112 §6.3 item 8).
    Close,
}

/// Why a body's framing could not be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramingError {
    #[error("invalid chunk-size line")]
    BadChunkSize,
    #[error("chunk data not followed by CRLF")]
    BadChunkEnd,
    #[error("trailer section too large or malformed")]
    BadTrailers,
    #[error("the stream ended inside the body")]
    Truncated,
}

/// What [`Decoder::decode`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Body bytes, taken off the front of the buffer.
    Data(Bytes),
    /// The buffer holds no further body bytes yet: read more.
    NeedMore,
    /// The body is complete; the buffer now starts after it.
    End,
}

/// Longest chunk-size line (with extensions) and trailer section we accept.
const MAX_SIZE_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Length {
        left: u64,
    },
    Size,
    Data {
        left: u64,
    },
    DataEnd,
    /// Bytes of trailer section seen so far.
    Trailers {
        seen: usize,
    },
    Close,
    Done,
}

/// Decodes one body; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decoder {
    step: Step,
}

// === impl Decoder ===

impl Decoder {
    pub(crate) fn new(framing: Framing) -> Decoder {
        let step = match framing {
            Framing::Empty | Framing::Length(0) => Step::Done,
            Framing::Length(n) => Step::Length { left: n },
            Framing::Chunked => Step::Size,
            Framing::Close => Step::Close,
        };
        Decoder { step }
    }

    /// Whether the whole body has been handed out.
    pub(crate) fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Takes the next body bytes off the front of `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
        loop {
            match self.step {
                Step::Done => return Ok(Decoded::End),
                Step::Length { left } | Step::Data { left } => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.step = match self.step {
                        Step::Length { .. } if left == 0 => Step::Done,
                        Step::Length { .. } => Step::Length { left },
                        _ if left == 0 => Step::DataEnd,
                        _ => Step::Data { left },
                    };
                    return Ok(Decoded::Data(data));
                }
                Step::Close if buf.is_empty() => return Ok(Decoded::NeedMore),
                Step::Close => return Ok(Decoded::Data(buf.split().freeze())),
                Step::Size | Step::DataEnd | Step::Trailers { .. } => {
                    if !self.chunk_framing(buf)? {
                        return Ok(Decoded::NeedMore);
                    }
                }
            }
        }
    }

    /// One step through the chunked coding's framing (size lines, the CRLF
    /// after data, trailers); false when more bytes are needed.
    fn chunk_framing(&mut self, buf: &mut BytesMut) -> Result<bool, FramingError> {
        match self.step {
            Step::Size => match chunk_size(buf)? {
                None => return Ok(false),
                Some((used, size)) => {
                    buf.advance(used);
                    self.step = if size == 0 {
                        Step::Trailers { seen: 0 }
                    } else {
                        Step::Data { left: size }
                    };
                }
            },
            Step::DataEnd => {
                if buf.len() < 2 {
                    return Ok(false);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(FramingError::BadChunkEnd);
                }
                buf.advance(2);
                self.step = Step::Size;
            }
            Step::Trailers { seen } => match trailer_line(buf)? {
                None if seen + buf.len() > MAX_TRAILERS => return Err(FramingError::BadTrailers),
                None => return Ok(false),
                // The empty line that ends the trailer section. Trailers are
                // dropped: none of ours is needed downstream.
                Some(2) => {
                    buf.advance(2);
                    self.step = Step::Done;
                }
                Some(n) if seen + n > MAX_TRAILERS => return Err(FramingError::BadTrailers),
                Some(n) => {
                    buf.advance(n);
                    self.step = Step::Trailers { seen: seen + n };
                }
            },
            _ => {}
        }
        Ok(true)
    }

    /// The stream ended: the body is complete only if it runs to the close.
    pub(crate) fn at_eof(&mut self) -> Result<(), FramingError> {
        match self.step {
            Step::Close | Step::Done => {
                self.step = Step::Done;
                Ok(())
            }
            _ => Err(FramingError::Truncated),
        }
    }
}

/// Parses `1*HEXDIG [ BWS ";" ext ] CRLF` at the start of `buf`:
/// `(bytes used, size)`, `None` when incomplete.
fn chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, FramingError> {
    let mut size: u64 = 0;
    let mut digits = 0;
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        digits += 1;
        if digits > 16 {
            return Err(FramingError::BadChunkSize);
        }
        size = (size << 4) | u64::from(d);
        i += 1;
    }
    if i == buf.len() {
        return if i > MAX_SIZE_LINE {
            Err(FramingError::BadChunkSize)
        } else {
            Ok(None)
        };
    }
    if digits == 0 {
        return Err(FramingError::BadChunkSize);
    }
    // Extensions (RFC 9112 §7.1.1) are ignored, but only visible characters,
    // spaces and tabs may appear in them: a bare CR or LF ends nothing here.
    let rest = &buf[i..];
    let Some(cr) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if buf.len() > MAX_SIZE_LINE {
            Err(FramingError::BadChunkSize)
        } else {
            Ok(None)
        };
    };
    let ext = &rest[..cr];
    let ext_ok = ext.is_empty()
        || (ext.trim_ascii_start().first() == Some(&b';')
            && ext
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)));
    if !ext_ok || rest[cr] != b'\r' || i + cr > MAX_SIZE_LINE {
        return Err(FramingError::BadChunkSize);
    }
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((i + cr + 2, size))),
        Some(_) => Err(FramingError::BadChunkSize),
    }
}

/// The length of the next trailer line including its CRLF, `None` when incomplete.
fn trailer_line(buf: &[u8]) -> Result<Option<usize>, FramingError> {
    let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if lf == 0 || buf[lf - 1] != b'\r' || buf[..lf - 1].contains(&b'\r') {
        return Err(FramingError::BadTrailers);
    }
    Ok(Some(lf + 1))
}

/// The line that starts a chunk of `len` bytes: `"{len:x}\r\n"`.
pub(crate) fn chunk_head(len: usize) -> ChunkHead {
    let mut out = [0u8; 18];
    let hex = format_hex(len as u64, &mut out);
    ChunkHead { buf: out, len: hex }
}

/// A formatted chunk-size line, without allocation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkHead {
    buf: [u8; 18],
    len: usize,
}

impl ChunkHead {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn format_hex(mut v: u64, out: &mut [u8; 18]) -> usize {
    let mut tmp = [0u8; 16];
    let mut n = 0;
    loop {
        tmp[n] = b"0123456789abcdef"[(v & 0xf) as usize];
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = b'\r';
    out[n + 1] = b'\n';
    n + 2
}

/// The last chunk and the end of an (empty) trailer section.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
