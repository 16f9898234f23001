//! A log file that can be reopened: logrotate renames the file, then sends
//! SIGUSR1, and the next line goes to a new file at the same path (nginx's
//! `USR1`). Writers share one [`LogFile`]; a failed write is counted and
//! reported once, never a reason to fail the request being logged.

use std::fs::{File, OpenOptions};
use std::io::{self, LineWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// An append-only text file of whole lines, reopened on request.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    out: Mutex<LineWriter<File>>,
    failed: AtomicU64,
}

/// Every file opened with [`LogFile::shared`], for [`reopen_all`].
static SHARED: Mutex<Vec<Weak<LogFile>>> = Mutex::new(Vec::new());

fn shared_files() -> MutexGuard<'static, Vec<Weak<LogFile>>> {
    SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reopens every file opened with [`LogFile::shared`] that is still in use
/// (on SIGUSR1); returns the ones that could not be reopened, which keep
/// writing to their old file.
pub fn reopen_all() -> Vec<(PathBuf, io::Error)> {
    let live: Vec<Arc<LogFile>> = {
        let mut files = shared_files();
        files.retain(|w| w.strong_count() > 0);
        files.iter().filter_map(Weak::upgrade).collect()
    };
    live.iter()
        .filter_map(|f| f.reopen().err().map(|e| (f.path.clone(), e)))
        .collect()
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_owned(),
            out: Mutex::new(LineWriter::new(open(path)?)),
            failed: AtomicU64::new(0),
        })
    }

    /// The one `LogFile` of `path` in this process, opened if needed: a
    /// config reload that keeps the path keeps the file, and [`reopen_all`]
    /// reaches it.
    pub fn shared(path: &Path) -> io::Result<Arc<LogFile>> {
        let mut files = shared_files();
        files.retain(|w| w.strong_count() > 0);
        if let Some(f) = files
            .iter()
            .filter_map(Weak::upgrade)
            .find(|f| f.path == path)
        {
            return Ok(f);
        }
        let f = Arc::new(LogFile::open(path)?);
        files.push(Arc::downgrade(&f));
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and a newline.
    pub fn write_line(&self, line: &str) {
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let r = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = r {
            if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write the log file; further failures are only counted");
            }
        }
    }

    /// Lines that could not be written.
    pub fn failed_writes(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Closes the file and opens `path` again (after logrotate moved it).
    /// On error the old file stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = open(&self.path)?;
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let _ = out.flush();
        *out = LineWriter::new(fresh);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_to_the_new_file_after_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = LogFile::open(&path).unwrap();
        log.write_line("one");
        std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
        log.write_line("two"); // still the renamed file, as with nginx
        log.reopen().unwrap();
        log.write_line("three");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("access.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        assert_eq!(log.failed_writes(), 0);
    }

    #[test]
    fn a_reopen_that_fails_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("access.log");
        let log = LogFile::open(&path).unwrap();
        std::fs::rename(&sub, dir.path().join("gone")).unwrap();
        assert!(log.reopen().is_err());
        log.write_line("kept");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("gone/access.log")).unwrap(),
            "kept\n"
        );
    }

    #[test]
    fn shared_files_are_one_per_path_and_all_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.log");
        let a = LogFile::shared(&path).unwrap();
        let b = LogFile::shared(&path).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one file per path");
        a.write_line("before");
        std::fs::rename(&path, dir.path().join("shared.log.1")).unwrap();
        let failed = reopen_all();
        assert!(failed.iter().all(|(p, _)| p != &path), "{failed:?}");
        b.write_line("after");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        drop((a, b));
        let again = LogFile::shared(&path).unwrap();
        again.write_line("reopened by a new owner");
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("owner\n"));
    }
}
