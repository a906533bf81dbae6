//! Every problem of a config file in one report, each naming its key (issue 20: only the first
//! was reported, so fixing a file took one run per mistake).
//!
//! serde stops at the first error, so the file is read as a TOML table and deserialized in
//! passes: each failed pass names the key it failed at (`serde_path_to_error`), that key is
//! removed (it falls back to its default) and the next pass goes on, until one succeeds. The
//! config that comes out is then checked for ranges and consistency like any other, so one
//! report holds type errors, unknown keys and range errors alike.

use std::collections::HashMap;
use std::fmt;

use serde_path_to_error::Segment;

use super::Config;

/// One thing wrong with a configuration: the key (`listeners.submission`, `pools[1].source_ips`),
/// the line it is set on when it can be found, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.line {
            write!(f, "line {n}: ")?;
        }
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The problems found so far; checks add to it and go on.
#[derive(Debug, Default)]
pub struct Problems {
    found: Vec<Problem>,
    /// Elements of arrays of tables dropped while deserializing, by array key: the checks
    /// that run afterwards see the remaining elements renumbered, the report must not.
    dropped: HashMap<String, Vec<usize>>,
}

impl Problems {
    pub fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let mut key = key.into();
        if !self.dropped.is_empty() {
            key = show(&as_written(&parse_key(&key), &self.dropped));
        }
        self.found.push(Problem {
            key,
            line: None,
            message: message.into(),
        });
    }

    /// Add the problem a check returned as `(key, why)`, if any.
    pub fn check<K: Into<String>>(&mut self, r: Result<(), (K, String)>) {
        if let Err((key, message)) = r {
            self.add(key, message);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Whether a problem is already reported for `key` (a loader check then has nothing to add).
    pub fn has(&self, key: &str) -> bool {
        self.found.iter().any(|p| p.key == key)
    }

    /// Whether an element of the array of tables `key` (`pools`) was dropped as unreadable:
    /// checks of the whole array would then report its absence a second time.
    pub fn dropped_from(&self, key: &str) -> bool {
        self.dropped.contains_key(key)
    }

    /// The problems, each given the line of its key in `text` (when there is a text), in file
    /// order; those without a line (defaults, files named by the config) last.
    pub fn into_sorted(self, text: Option<&str>) -> Vec<Problem> {
        let mut v = self.found;
        if let Some(text) = text {
            for p in &mut v {
                p.line = super::values::key_or_table_line(text, &p.key);
            }
        }
        v.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        v.dedup();
        v
    }
}

/// A key path as serde_path_to_error reports it, with indices into arrays (of tables).
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn show(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// `pools[1].source_ips` → its segments (the keys our checks build; dots never appear in them).
fn parse_key(key: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let mut pieces = part.split('[');
        if let Some(name) = pieces.next() {
            out.push(Seg::Key(name.to_string()));
        }
        for index in pieces {
            match index.trim_end_matches(']').parse() {
                Ok(i) => out.push(Seg::Index(i)),
                Err(_) => out.push(Seg::Key(format!("[{index}"))),
            }
        }
    }
    out
}

/// Safety bound on passes; every pass removes one key, so a file never needs more than it has.
const MAX_PASSES: usize = 1000;

/// Deserialize `table` into a `Config`, adding one problem per key that does not deserialize
/// (wrong type, bad human value, unknown key, missing required key). `None` when no config
/// could be made at all (then the range checks are skipped: they would only repeat defaults).
pub(super) fn deserialize_all(mut table: toml::Table, problems: &mut Problems) -> Option<Config> {
    // Keys removed so far (as written in the file), and the elements dropped from each array,
    // so that a later error inside `pools[2]` is still reported as `pools[2]` after `pools[0]`
    // was dropped.
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    let mut dropped: HashMap<String, Vec<usize>> = HashMap::new();
    for _ in 0..MAX_PASSES {
        let value = toml::Value::Table(table.clone());
        let parsed: Result<Config, _> = serde_path_to_error::deserialize(value);
        let err = match parsed {
            Ok(cfg) => {
                problems.dropped = dropped;
                return Some(cfg);
            }
            Err(e) => e,
        };
        let Some(now) = err
            .path()
            .iter()
            .filter(|s| !matches!(s, Segment::Enum { .. }))
            .map(|s| match s {
                Segment::Map { key } => Some(Seg::Key(key.clone())),
                Segment::Seq { index } => Some(Seg::Index(*index)),
                _ => None,
            })
            .collect::<Option<Vec<Seg>>>()
        else {
            problems.add("(file)", err.inner().message().trim().to_string());
            return None;
        };
        let original = as_written(&now, &dropped);
        // A table whose bad key was removed may now miss a required key: already reported.
        let consequence = removed
            .iter()
            .any(|r| r.len() > original.len() && r.starts_with(&original));
        if !consequence {
            let key = if original.is_empty() {
                "(file)".to_string()
            } else {
                show(&original)
            };
            problems.add(key, err.inner().message().trim().to_string());
        }
        if now.is_empty() || !remove(&mut table, &now) {
            return None;
        }
        if let Some(Seg::Index(i)) = original.last() {
            dropped
                .entry(show(&original[..original.len() - 1]))
                .or_default()
                .push(*i);
        }
        removed.push(original);
    }
    None
}

/// `path` in the current (reduced) table → the same element's path in the file as written.
fn as_written(path: &[Seg], dropped: &HashMap<String, Vec<usize>>) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::with_capacity(path.len());
    for s in path {
        let seg = match s {
            Seg::Index(i) => {
                let mut gone = dropped.get(&show(&out)).cloned().unwrap_or_default();
                gone.sort_unstable();
                let mut at = *i;
                for g in gone {
                    if g <= at {
                        at += 1;
                    }
                }
                Seg::Index(at)
            }
            key => key.clone(),
        };
        out.push(seg);
    }
    out
}

/// Remove the value at `path` from `table`; false when there is nothing there to remove.
fn remove(table: &mut toml::Table, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut here = TableOrArray::Table(table);
    for s in parents {
        let next = match (here, s) {
            (TableOrArray::Table(t), Seg::Key(k)) => t.get_mut(k),
            (TableOrArray::Array(a), Seg::Index(i)) => a.get_mut(*i),
            _ => None,
        };
        here = match next {
            Some(toml::Value::Table(t)) => TableOrArray::Table(t),
            Some(toml::Value::Array(a)) => TableOrArray::Array(a),
            _ => return false,
        };
    }
    match (here, last) {
        (TableOrArray::Table(t), Seg::Key(k)) => t.remove(k).is_some(),
        (TableOrArray::Array(a), Seg::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

enum TableOrArray<'a> {
    Table(&'a mut toml::Table),
    Array(&'a mut Vec<toml::Value>),
}
