//! Per-tenant learned adjustments on top of the shipped model ("spam learn"). Sparse additive
//! weights over the same hashed features and tags. Learning a message moves its score past the
//! relevant threshold by a margin, spreading the change evenly over the message's features, so
//! similar messages move with it and unrelated ones do not. Serialised deterministically so the
//! store can keep it as a blob.

use std::collections::BTreeMap;

use crate::engine::{Engine, ScanContext};
use crate::error::SpamError;
use crate::signals::Hit;

const MAGIC: &[u8; 8] = b"OGOVER01";
/// Score margin past the threshold that a learned message is pushed to.
const MARGIN: f64 = 1.0;
/// Entries kept at most (a tenant cannot grow the blob without bound).
pub const MAX_ENTRIES: usize = 500_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    weights: BTreeMap<u32, f32>,
    tags: BTreeMap<String, f32>,
    learned_spam: u32,
    learned_ham: u32,
}

impl Overlay {
    pub fn new() -> Overlay {
        Overlay::default()
    }

    /// (spam, ham) messages learned so far.
    pub fn counts(&self) -> (u32, u32) {
        (self.learned_spam, self.learned_ham)
    }

    pub fn len(&self) -> usize {
        self.weights.len() + self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Score change this overlay makes for a message with these features and hits.
    pub(crate) fn contribution(&self, indices: &[u32], hits: &[Hit]) -> f64 {
        let w: f64 = indices
            .iter()
            .filter_map(|i| self.weights.get(i))
            .map(|w| f64::from(*w))
            .sum();
        let t: f64 = hits
            .iter()
            .filter_map(|h| self.tags.get(h.tag))
            .map(|w| f64::from(*w))
            .sum();
        w + t
    }

    /// Learns `raw` as spam or ham for this tenant. Returns true if the overlay changed.
    pub fn learn(&mut self, engine: &Engine, raw: &[u8], is_spam: bool) -> bool {
        let ctx = ScanContext::default();
        let a = engine.analyse(raw, &ctx);
        let score = engine.verdict(&a, Some(self)).score;
        let (suspicious, spam) = engine.thresholds();
        let target = if is_spam {
            spam + MARGIN
        } else {
            suspicious - MARGIN
        };
        if is_spam {
            self.learned_spam = self.learned_spam.saturating_add(1);
        } else {
            self.learned_ham = self.learned_ham.saturating_add(1);
        }
        let delta = target - score;
        let wrong_side = if is_spam { delta > 0.0 } else { delta < 0.0 };
        let n = a.indices.len() + a.hits.len();
        if !wrong_side || n == 0 {
            return false;
        }
        let step = (delta / n as f64) as f32;
        for i in &a.indices {
            if self.weights.len() >= MAX_ENTRIES && !self.weights.contains_key(i) {
                continue;
            }
            *self.weights.entry(*i).or_insert(0.0) += step;
        }
        for h in &a.hits {
            *self.tags.entry(h.tag.to_string()).or_insert(0.0) += step;
        }
        true
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.weights.len() * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.learned_spam.to_le_bytes());
        out.extend_from_slice(&self.learned_ham.to_le_bytes());
        out.extend_from_slice(&(self.tags.len() as u32).to_le_bytes());
        for (t, w) in &self.tags {
            out.push(t.len().min(255) as u8);
            out.extend_from_slice(&t.as_bytes()[..t.len().min(255)]);
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&(self.weights.len() as u32).to_le_bytes());
        for (i, w) in &self.weights {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Overlay, SpamError> {
        let mut r = b;
        let mut take = |n: usize| -> Result<&[u8], SpamError> {
            if r.len() < n {
                return Err(SpamError::BadOverlay("truncated"));
            }
            let (h, t) = r.split_at(n);
            r = t;
            Ok(h)
        };
        if take(8)? != MAGIC {
            return Err(SpamError::BadOverlay("bad magic"));
        }
        let u32_of = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let f32_of = |s: &[u8]| f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let mut o = Overlay {
            learned_spam: u32_of(take(4)?),
            learned_ham: u32_of(take(4)?),
            ..Overlay::default()
        };
        let ntags = u32_of(take(4)?);
        for _ in 0..ntags {
            let len = take(1)?[0] as usize;
            let tag = String::from_utf8(take(len)?.to_vec())
                .map_err(|_| SpamError::BadOverlay("tag not UTF-8"))?;
            o.tags.insert(tag, f32_of(take(4)?));
        }
        let n = u32_of(take(4)?) as usize;
        if n > MAX_ENTRIES {
            return Err(SpamError::BadOverlay("too many entries"));
        }
        for _ in 0..n {
            let i = u32_of(take(4)?);
            let w = f32_of(take(4)?);
            if !w.is_finite() {
                return Err(SpamError::BadOverlay("non-finite weight"));
            }
            o.weights.insert(i, w);
        }
        Ok(o)
    }
}
