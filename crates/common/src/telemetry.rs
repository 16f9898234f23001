//! Logging setup: human-readable on a terminal, JSON lines for log shippers,
//! and syslog priorities when stderr is the systemd journal.
//! Called once, by the binary only; libraries just emit `tracing` events.
//!
//! Under systemd, stderr is a stream into journald, which reads a leading
//! `<N>` on each line as that line's priority (sd-daemon(3)) and strips it.
//! Without it every line lands at priority 6 and `journalctl -p err` shows
//! nothing. systemd sets `JOURNAL_STREAM=<dev>:<inode>` for the stream it
//! connected; we prefix only when stderr still is that stream, so a child
//! whose stderr was redirected to a file does not get `<3>` in its file.

use std::io::{self, IsTerminal, Write};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{fmt, EnvFilter};

/// Output format of log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human format (colors only on a TTY).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `level` is an `EnvFilter` directive such as
/// `info` or `stackd_vrrp=debug,info`; `RUST_LOG` overrides it when set.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| format!("invalid log level \"{level}\": {e}"))?;
    let writer = Stderr {
        journal: stderr_is_journal(),
    };
    let builder = fmt().with_env_filter(filter).with_writer(writer);
    let result = match format {
        LogFormat::Human => builder
            .with_ansi(!writer.journal && io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    tracing::debug!(
        journal = writer.journal,
        "logging set up (syslog priorities on each line when stderr is the journal)"
    );
    Ok(())
}

/// Whether stderr is the stream systemd connected to the journal.
pub fn stderr_is_journal() -> bool {
    let Some((dev, ino)) = std::env::var("JOURNAL_STREAM")
        .ok()
        .as_deref()
        .and_then(parse_journal_stream)
    else {
        return false;
    };
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(fd) = io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// `JOURNAL_STREAM` is `<device>:<inode>`, both decimal (systemd.exec(5)).
pub fn parse_journal_stream(v: &str) -> Option<(u64, u64)> {
    let (d, i) = v.split_once(':')?;
    Some((d.parse().ok()?, i.parse().ok()?))
}

/// The syslog priority journald reads from `<N>` (sd-daemon(3)).
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7, // DEBUG, TRACE
    }
}

/// Prints a line on stderr outside `tracing` (the binary's last words),
/// with the error priority when stderr is the journal.
pub fn eprint_error(text: &str) {
    let mut w = LineWriter::new(io::stderr().lock(), stderr_is_journal().then_some(3));
    let _ = writeln!(w, "{text}");
}

// === impl Stderr ===

/// Hands out one [`LineWriter`] per event, with that event's priority.
#[derive(Clone, Copy, Debug)]
struct Stderr {
    journal: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineWriter<io::StderrLock<'static>>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter::new(io::stderr().lock(), self.journal.then_some(6))
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        let prio = self.journal.then(|| syslog_priority(meta.level()));
        LineWriter::new(io::stderr().lock(), prio)
    }
}

// === impl LineWriter ===

/// Puts `<N>` at the start of every line written through it, including the
/// later lines of a multi-line message (journald splits on newlines).
#[derive(Debug)]
pub struct LineWriter<W> {
    inner: W,
    prefix: Option<[u8; 3]>,
    at_line_start: bool,
}

impl<W: Write> LineWriter<W> {
    /// `priority`: 0..=7, or `None` to pass bytes through untouched.
    pub fn new(inner: W, priority: Option<u8>) -> Self {
        LineWriter {
            inner,
            prefix: priority.map(|p| [b'<', b'0' + p.min(7), b'>']),
            at_line_start: true,
        }
    }
}

impl<W: Write> Write for LineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(prefix) = self.prefix else {
            return self.inner.write(buf);
        };
        for line in buf.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                self.inner.write_all(&prefix)?;
            }
            self.inner.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(prio: Option<u8>, chunks: &[&str]) -> String {
        let mut w = LineWriter::new(Vec::new(), prio);
        for c in chunks {
            w.write_all(c.as_bytes()).unwrap();
        }
        String::from_utf8(w.inner).unwrap()
    }

    #[test]
    fn every_line_gets_the_priority() {
        assert_eq!(
            through(Some(3), &["reload rejected:\na.toml:1:1: x\n"]),
            "<3>reload rejected:\n<3>a.toml:1:1: x\n"
        );
        // A line written in pieces is prefixed once.
        assert_eq!(through(Some(6), &["ab", "c\n", "d\n"]), "<6>abc\n<6>d\n");
        assert_eq!(through(None, &["a\nb\n"]), "a\nb\n");
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(syslog_priority(&Level::ERROR), 3);
        assert_eq!(syslog_priority(&Level::WARN), 4);
        assert_eq!(syslog_priority(&Level::INFO), 6);
        assert_eq!(syslog_priority(&Level::DEBUG), 7);
        assert_eq!(syslog_priority(&Level::TRACE), 7);
    }

    #[test]
    fn journal_stream_is_device_colon_inode() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("x:1"), None);
    }
}
