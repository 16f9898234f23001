//! Located config problems: every message says file:line:column.
//!
//! Validation code does not carry spans around. It reports a problem against a
//! key path such as `ha.instance[0].priority`; [`Locator`] then finds where that
//! key sits in the original text using `toml_edit`'s spans. This keeps the
//! config structs plain serde types while `stackd check` still points at the
//! exact line, like `nginx -t`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One step of a key path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a value in the config, e.g. `proxy.upstream[1].servers[0].weight`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root(key: &str) -> Self {
        KeyPath(vec![Seg::Key(key.to_owned())])
    }

    /// This path with one more key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    /// Whether `prefix` is this path or one of its parents.
    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// This path with one more index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A validation finding before it is located: what is wrong and where in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: KeyPath,
    pub message: String,
}

/// Collects findings during validation so that all of them are reported at
/// once: errors (the file cannot be used) and warnings (it can, but an
/// operator should know, e.g. a world-readable password file).
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// Do not open `*_file` secrets: set while a service validates another
    /// service's table (the proxy has no business reading `[ha]`'s password,
    /// and usually no permission either).
    pub skip_secret_files: bool,
}

impl Findings {
    /// An error at `path`.
    pub fn push(&mut self, path: KeyPath, message: impl Into<String>) {
        self.errors.push(Finding {
            path,
            message: message.into(),
        });
    }

    /// A warning at `path`.
    pub fn warn(&mut self, path: KeyPath, message: impl Into<String>) {
        self.warnings.push(Finding {
            path,
            message: message.into(),
        });
    }

    /// No errors (warnings do not count).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A problem with a place in a file, printed as `file:line:col: key: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The key path, when the problem is about one key (empty for syntax errors).
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Finds the source position of key paths in one TOML text.
pub struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        let doc = toml_edit::ImDocument::parse(text).ok();
        Locator { file, text, doc }
    }

    /// Turns a byte span into a problem at its start.
    pub fn at_span(&self, span: Option<Range<usize>>, key: String, message: String) -> Problem {
        let (line, column) = span.map_or((1, 1), |s| line_col(self.text, s.start));
        Problem {
            file: self.file.to_owned(),
            line,
            column,
            key,
            message,
        }
    }

    /// The key path of the innermost value that contains byte `pos`, so that a
    /// serde error such as "invalid IP address syntax" can say which key it is about.
    pub fn path_at(&self, pos: usize) -> KeyPath {
        let mut path = KeyPath::default();
        if let Some(d) = &self.doc {
            path_at(d.as_item(), pos, &mut path);
        }
        path
    }

    /// Locates a finding: the value at its path, or the nearest existing parent
    /// (a missing key is reported where its table is).
    pub fn locate(&self, f: &Finding) -> Problem {
        let span = self
            .doc
            .as_ref()
            .and_then(|d| span_of(d.as_item(), &f.path.0, false));
        self.at_span(span, f.path.to_string(), f.message.clone())
    }

    /// Locates a finding about a key itself (an unknown key): at the key,
    /// not at its value.
    pub fn locate_key(&self, f: &Finding) -> Problem {
        let span = self
            .doc
            .as_ref()
            .and_then(|d| span_of(d.as_item(), &f.path.0, true));
        self.at_span(span, f.path.to_string(), f.message.clone())
    }
}

/// Walks `path` from `item`, returning the deepest span found; with
/// `key`, the last key's own span rather than its value's.
fn span_of(item: &toml_edit::Item, path: &[Seg], key: bool) -> Option<Range<usize>> {
    use toml_edit::{Item, Value};
    let Some((seg, rest)) = path.split_first() else {
        return item.span();
    };
    let here = item.span();
    let child: Option<(Option<Range<usize>>, Item)> = match (seg, item) {
        (Seg::Key(k), Item::Table(t)) => t.get_key_value(k).map(|(key, v)| (key.span(), v.clone())),
        (Seg::Key(k), Item::Value(Value::InlineTable(t))) => {
            t.get_key_value(k).map(|(key, v)| (key.span(), v.clone()))
        }
        (Seg::Index(i), Item::ArrayOfTables(a)) => {
            a.get(*i).map(|t| (t.span(), Item::Table(t.clone())))
        }
        (Seg::Index(i), Item::Value(Value::Array(a))) => {
            a.get(*i).map(|v| (v.span(), Item::Value(v.clone())))
        }
        _ => None,
    };
    match child {
        Some((key_span, _)) if key && rest.is_empty() && key_span.is_some() => key_span,
        // Prefer the value's own span; fall back to its key, then to the parent.
        Some((key_span, child)) => span_of(&child, rest, key).or(key_span).or(here),
        None => here,
    }
}

fn contains(span: Option<Range<usize>>, pos: usize) -> bool {
    span.is_some_and(|s| s.start <= pos && pos < s.end.max(s.start + 1))
}

/// Descends into whichever child's key or value contains `pos`.
fn path_at(item: &toml_edit::Item, pos: usize, path: &mut KeyPath) {
    use toml_edit::{Item, Value};
    match item {
        Item::Table(t) => {
            for (k, v) in t.iter() {
                let key_span = t.key(k).and_then(|key| key.span());
                if contains(v.span(), pos) || contains(key_span, pos) || has_pos(v, pos) {
                    path.0.push(Seg::Key(k.to_owned()));
                    return path_at(v, pos, path);
                }
            }
        }
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let it = Item::Table(t.clone());
                if contains(t.span(), pos) || has_pos(&it, pos) {
                    path.0.push(Seg::Index(i));
                    return path_at(&it, pos, path);
                }
            }
        }
        Item::Value(Value::InlineTable(t)) => {
            for (k, v) in t.iter() {
                if contains(v.span(), pos) {
                    path.0.push(Seg::Key(k.to_owned()));
                    return path_at(&Item::Value(v.clone()), pos, path);
                }
            }
        }
        Item::Value(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                if contains(v.span(), pos) {
                    path.0.push(Seg::Index(i));
                    return path_at(&Item::Value(v.clone()), pos, path);
                }
            }
        }
        _ => {}
    }
}

/// Whether any value below `item` contains `pos` (tables have no span of their own body).
fn has_pos(item: &toml_edit::Item, pos: usize) -> bool {
    use toml_edit::Item;
    match item {
        Item::Table(t) => t
            .iter()
            .any(|(_, v)| contains(v.span(), pos) || has_pos(v, pos)),
        Item::ArrayOfTables(a) => a
            .iter()
            .any(|t| contains(t.span(), pos) || has_pos(&Item::Table(t.clone()), pos)),
        other => contains(other.span(), pos),
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 11), (2, 6));
    }

    #[test]
    fn locates_nested_paths() {
        let text = "[proxy]\nlisten = [\"x\"]\n\n[[proxy.upstream]]\nname = \"a\"\nservers = [ { addr = \"1\" }, { addr = \"2\", weight = 0 } ]\n";
        let loc = Locator::new(Path::new("t.toml"), text);
        let path = KeyPath::root("proxy")
            .key("upstream")
            .index(0)
            .key("servers")
            .index(1)
            .key("weight");
        let p = loc.locate(&Finding {
            path,
            message: "bad".into(),
        });
        assert_eq!((p.line, p.column), (6, 52), "{p}");
        assert_eq!(
            p.to_string(),
            "t.toml:6:52: proxy.upstream[0].servers[1].weight: bad"
        );
    }

    #[test]
    fn names_the_key_at_a_position() {
        let text =
            "[ha]\n[[ha.instance]]\nname = \"a\"\nvirtual_ipaddress = [\"192.0.2.1/24\", \"x\"]\n";
        let loc = Locator::new(Path::new("t.toml"), text);
        let pos = text.find("\"x\"").unwrap();
        assert_eq!(
            loc.path_at(pos).to_string(),
            "ha.instance[0].virtual_ipaddress[1]"
        );
    }

    #[test]
    fn missing_key_points_at_its_table() {
        let text = "[proxy]\nlisten = []\n\n[[proxy.upstream]]\nname = \"a\"\n";
        let loc = Locator::new(Path::new("t.toml"), text);
        let path = KeyPath::root("proxy")
            .key("upstream")
            .index(0)
            .key("servers");
        let p = loc.locate(&Finding {
            path,
            message: "missing".into(),
        });
        assert_eq!(p.line, 4, "{p}");
    }
}
