//! Reading past a value that does not parse, so that one bad value never
//! hides the other problems in its table.
//!
//! Serde stops at the first value it cannot turn into its type. To report the
//! rest, we note that problem, swap the offending key for a stand-in in a
//! `toml_edit` copy of the file (remove it, or, when it is required, put an
//! empty value of a shape the type accepts) and deserialize again, up to
//! [`MAX_ROUNDS`] times. Problems are located by key path in the *original*
//! text, and validation findings at or below a swapped key are dropped: they
//! are about the stand-in, not the file.
//!
//! A syntax error still stops everything: past it, the file has no structure.

use serde::de::DeserializeOwned;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::diag::{KeyPath, Locator, Problem, Seg};

/// Bound on bad values reported per file; past it the rest waits for the next run.
const MAX_ROUNDS: usize = 64;

/// The outcome of reading a file whose values may not all parse.
pub(crate) struct Recovered<T> {
    /// The config with stand-ins, when every bad value could be replaced.
    pub config: Option<T>,
    /// One problem per value that did not parse, located in the original text.
    pub problems: Vec<Problem>,
    /// Keys holding stand-ins; findings at or below them are not the file's.
    pub swapped: Vec<KeyPath>,
}

/// Deserializes `text`, collecting every type error instead of the first.
pub(crate) fn deserialize<T: DeserializeOwned>(text: &str, original: &Locator<'_>) -> Recovered<T> {
    let first = match toml::from_str::<T>(text) {
        Ok(config) => {
            return Recovered {
                config: Some(config),
                problems: Vec::new(),
                swapped: Vec::new(),
            }
        }
        Err(e) => e,
    };
    let syntax_only = |e: &toml::de::Error| Recovered::<T> {
        config: None,
        problems: vec![original.at_span(
            e.span(),
            e.span()
                .map(|s| original.path_at(s.start).to_string())
                .unwrap_or_default(),
            e.message().trim().to_owned(),
        )],
        swapped: Vec::new(),
    };
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return syntax_only(&first);
    };
    let mut out = Recovered {
        config: None,
        problems: Vec::new(),
        swapped: Vec::new(),
    };
    let mut err = first;
    let mut current = text.to_owned();
    for _ in 0..MAX_ROUNDS {
        let Some(bad) = Bad::of(&err, &current) else {
            out.problems.push(syntax_only(&err).problems.remove(0));
            return out;
        };
        out.problems.push(original.at_path(&bad.path, &err));
        let Some(next) = swap(&mut doc, &bad) else {
            return out; // no stand-in fits: what we found so far is the report
        };
        out.swapped.push(bad.target.clone());
        current = doc.to_string();
        match next {
            Ok(config) => {
                out.config = Some(config);
                return out;
            }
            Err(e) => err = e,
        }
    }
    out
}

/// Where one error is, in the text being deserialized.
struct Bad {
    /// The key path of the error itself (for locating it).
    path: KeyPath,
    /// The key to swap: the path itself, its array's key for an element, or
    /// the missing key for "missing field".
    target: KeyPath,
    /// The key is required: removing it is no stand-in.
    required: bool,
}

impl Bad {
    fn of(e: &toml::de::Error, text: &str) -> Option<Bad> {
        let span = e.span()?;
        let file = std::path::Path::new("");
        let mut path = Locator::new(file, text).path_at(span.start);
        let missing = e
            .message()
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next());
        if let Some(field) = missing {
            // The span may sit on any key of the table that lacks the field.
            while !path.0.is_empty() && !is_table(text, &path) {
                path.0.pop();
            }
            let target = path.key(field);
            return Some(Bad {
                path: target.clone(),
                target,
                required: true,
            });
        }
        let mut target = path.clone();
        // An element of a plain array: swap the whole array.
        while matches!(target.0.last(), Some(Seg::Index(_))) && target.0.len() > 1 {
            if is_table(text, &target) {
                break;
            }
            target.0.pop();
        }
        if !matches!(target.0.last(), Some(Seg::Key(_))) {
            return None;
        }
        Some(Bad {
            path,
            target,
            required: false,
        })
    }
}

/// Whether `path` names a table (`[x]`, `[[x]]` or `{..}`), not a value.
fn is_table(text: &str, path: &KeyPath) -> bool {
    let Ok(doc) = text.parse::<DocumentMut>() else {
        return false;
    };
    let mut item: Option<Item> = Some(doc.as_item().clone());
    for seg in &path.0 {
        item = item.and_then(|i| child(&i, seg));
    }
    matches!(
        item,
        Some(Item::Table(_)) | Some(Item::Value(Value::InlineTable(_)))
    )
}

fn child(item: &Item, seg: &Seg) -> Option<Item> {
    match (seg, item) {
        (Seg::Key(k), Item::Table(t)) => t.get(k).cloned(),
        (Seg::Key(k), Item::Value(Value::InlineTable(t))) => t.get(k).cloned().map(Item::Value),
        (Seg::Index(i), Item::ArrayOfTables(a)) => a.get(*i).cloned().map(Item::Table),
        (Seg::Index(i), Item::Value(Value::Array(a))) => a.get(*i).cloned().map(Item::Value),
        _ => None,
    }
}

/// Tries stand-ins for `bad.target` until the error moves elsewhere; returns
/// the next deserialization result, or `None` when nothing fits.
fn swap<T: DeserializeOwned>(
    doc: &mut DocumentMut,
    bad: &Bad,
) -> Option<Result<T, toml::de::Error>> {
    let before = doc.clone();
    // Stand-ins first: serde reports a missing field only after the other
    // fields' errors, so a removal that seems to work may only defer one.
    let candidates: Vec<Option<Value>> = stand_ins()
        .into_iter()
        .map(Some)
        .chain((!bad.required).then_some(None))
        .collect();
    for c in candidates {
        *doc = before.clone();
        if !edit(doc.as_item_mut(), &bad.target.0, &c) {
            return None;
        }
        let text = doc.to_string();
        match toml::from_str::<T>(&text) {
            Ok(cfg) => return Some(Ok(cfg)),
            Err(e) => match Bad::of(&e, &text) {
                // The stand-in only moved the error inside the swapped value.
                Some(b) if b.target.starts_with(&bad.target) => continue,
                _ => return Some(Err(e)),
            },
        }
    }
    *doc = before;
    None
}

/// Empty values of each shape a key can take, tried in order.
fn stand_ins() -> Vec<Value> {
    let mut v: Vec<Value> = vec![
        Value::from(toml_edit::Array::new()),
        Value::from(""),
        Value::from(0i64),
        Value::from(false),
        Value::from(toml_edit::InlineTable::new()),
        Value::from("1s"),
        Value::from("0.0.0.0:0"),
        Value::from("0.0.0.0/32"),
    ];
    v.iter_mut().for_each(|x| x.decor_mut().clear());
    v
}

/// Sets (`Some`) or removes (`None`) the value at `path`; false when the path is not there.
fn edit(item: &mut Item, path: &[Seg], new: &Option<Value>) -> bool {
    match (path, item) {
        ([Seg::Key(k), rest @ ..], Item::Table(t)) => edit_in_table(t, k, rest, new),
        ([Seg::Key(_), ..], Item::Value(v)) => edit_value(v, path, new),
        ([Seg::Index(i), rest @ ..], Item::ArrayOfTables(a)) => edit_aot(a, *i, rest, new),
        ([Seg::Index(_), ..], Item::Value(v)) => edit_value(v, path, new),
        _ => false,
    }
}

fn edit_aot(a: &mut toml_edit::ArrayOfTables, i: usize, rest: &[Seg], new: &Option<Value>) -> bool {
    let Some(t) = a.get_mut(i) else { return false };
    match rest {
        [Seg::Key(k), tail @ ..] => edit_in_table(t, k, tail, new),
        _ => false,
    }
}

fn edit_in_table(t: &mut Table, k: &str, rest: &[Seg], new: &Option<Value>) -> bool {
    if rest.is_empty() {
        match new {
            Some(v) => {
                t.insert(k, Item::Value(v.clone()));
            }
            None => {
                t.remove(k);
            }
        }
        return true;
    }
    t.get_mut(k).is_some_and(|c| edit(c, rest, new))
}

fn edit_value(v: &mut Value, path: &[Seg], new: &Option<Value>) -> bool {
    match (path, v) {
        ([Seg::Key(k)], Value::InlineTable(t)) => {
            match new {
                Some(n) => {
                    t.insert(k, n.clone());
                }
                None => {
                    t.remove(k);
                }
            }
            true
        }
        ([Seg::Key(k), rest @ ..], Value::InlineTable(t)) => {
            t.get_mut(k).is_some_and(|c| edit_value(c, rest, new))
        }
        ([Seg::Index(i), rest @ ..], Value::Array(a)) => {
            a.get_mut(*i).is_some_and(|c| edit_value(c, rest, new))
        }
        _ => false,
    }
}

// === impl Locator (problems by key path) ===

impl Locator<'_> {
    /// A serde error, placed where its key path is in the original text.
    fn at_path(&self, path: &KeyPath, e: &toml::de::Error) -> Problem {
        let f = super::Finding {
            path: path.clone(),
            message: e.message().trim().to_owned(),
        };
        // An unknown key is the key's fault, not its value's.
        if f.message.starts_with("unknown field") {
            self.locate_key(&f)
        } else {
            self.locate(&f)
        }
    }
}
