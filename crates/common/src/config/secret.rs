//! Secrets in config: passwords that must never reach a log line, an error
//! message, a status page or `ps`.
//!
//! - [`Secret`] holds one; its `Debug`, `Display` and `Serialize` print `***`,
//!   so deriving `Debug` on a config struct cannot leak it.
//! - [`redact_url`] hides the password of a `redis://user:pass@host` URL, even
//!   one whose password contains `/` or `@`.
//! - `*_file` keys ([`read_secret_file`]) keep a secret out of the config file
//!   altogether, in a file only the service that needs it can read;
//!   [`world_readable`] is what `stackd check` warns about.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A password. Shown as `***` everywhere; [`Secret::expose`] is the only way in.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

// === impl Secret ===

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one call that needs it (AUTH, the advert).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// `url` with the password (if any) replaced by `***`.
///
/// The credentials end at the *last* `@` of the URL, not at the first `/`:
/// people paste passwords with `/` and `@` in them, and a redaction that
/// stops early prints the rest.
///
/// ```
/// use stackd_common::config::redact_url;
/// assert_eq!(redact_url("redis://u:s3cr/et@h:6379/0"), "redis://u:***@h:6379/0");
/// assert_eq!(redact_url("redis://:a@b/c@h/0"), "redis://:***@h/0");
/// assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
/// assert_eq!(redact_url("redis://user@h/0"), "redis://user@h/0");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rfind('@') {
        Some(at) => {
            let creds = &rest[..at];
            let shown = match creds.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => creds.to_owned(),
            };
            format!("{scheme}://{shown}@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Whether `url` carries a password (`user:pass@` or `:pass@`).
pub fn url_has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.rfind('@').map(|at| rest[..at].contains(':')))
        .unwrap_or(false)
}

/// The secret in `path`: its first line, without the line break. An empty
/// secret is an error (an empty file is a mistake, not "no password").
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(format!(
            "{} is empty; put the password on its first line",
            path.display()
        ));
    }
    Ok(Secret::new(line))
}

/// The file's permission bits when every user may read it (`o+r`).
pub fn world_readable(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o004 != 0).then_some(mode)
}

/// The warning `stackd check` gives for a world-readable secret file.
pub fn world_readable_warning(path: &Path, mode: u32) -> String {
    format!(
        "{} holds a secret but every user can read it (mode {mode:04o}); chmod o-r it (e.g. 0640, group of the service)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn urls_lose_their_passwords_whatever_they_contain() {
        for (url, want) in [
            (
                "redis://:pa/ss@10.0.0.1:6379/0",
                "redis://:***@10.0.0.1:6379/0",
            ),
            ("redis://stackd:x@y/z@h:1", "redis://stackd:***@h:1"),
            (
                "redis+sentinel://u:p/w@a:26379,b/mymaster/1",
                "redis+sentinel://u:***@a:26379,b/mymaster/1",
            ),
            ("memory://", "memory://"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
        assert!(url_has_password("redis://:p@h/0"));
        assert!(!url_has_password("redis://h/0"));
        assert!(!url_has_password("redis://user@h/0"));
    }

    #[test]
    fn secret_files_and_their_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\nignored\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert_eq!(
            read_secret_file(&p).map(|s| s.expose().to_owned()),
            Ok("s3cret".into())
        );
        assert_eq!(world_readable(&p), None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(world_readable(&p), Some(0o644));
        std::fs::write(&p, "\n").expect("write");
        assert!(read_secret_file(&p).unwrap_err().contains("empty"));
        assert!(read_secret_file(&dir.path().join("none"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
