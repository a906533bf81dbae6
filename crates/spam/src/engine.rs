//! The engine: parse -> features + signals -> model -> `Verdict` with reasons whose weights sum
//! to the score (log-odds of spam). Shared behind `Arc` by the relay; scanning is read-only.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use outguard_types::verdict::{Class, Reason, Verdict};

use crate::error::SpamError;
use crate::features;
use crate::limits::{Budget, SCAN_BUDGET};
use crate::model::Model;
use crate::overlay::Overlay;
use crate::parse::{self, Doc};
use crate::signals::{self, Cx, Hit, TAGS};

/// The shipped model, trained on the TRAIN split (see README for how to regenerate it).
static DEFAULT_MODEL: &[u8] = include_bytes!("../model/default.bin");
static BUILTIN: OnceLock<Arc<Model>> = OnceLock::new();

/// What the relay knows about the sender, for signals that compare against it.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanContext<'a> {
    pub sender_domain: Option<&'a str>,
    pub tenant_domains: &'a [String],
}

/// A loaded model plus thresholds. Cheap to clone (the weights are behind an `Arc`).
#[derive(Clone)]
pub struct Engine {
    model: Arc<Model>,
    /// One bit per feature slot: set when its weight is non-zero. 128 KiB, so it stays in cache
    /// while the 4 MiB weight table is only touched for the few features that matter.
    nonzero: Arc<Vec<u64>>,
    suspicious: f64,
    spam: f64,
}

impl std::fmt::Debug for Engine {
    // The weights are a million floats: show what identifies the engine instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("suspicious", &self.suspicious)
            .field("spam", &self.spam)
            .field(
                "nonzero_weights",
                &self.model.weights.iter().filter(|w| **w != 0.0).count(),
            )
            .finish()
    }
}

/// Everything the model saw in one message, before it is turned into reasons.
pub(crate) struct Analysis {
    pub doc: Doc,
    pub indices: Vec<u32>,
    pub hits: Vec<Hit>,
    pub out_of_time: bool,
}

impl Engine {
    /// The shipped default model. If the embedded file were ever unreadable, an empty model
    /// (every message clean) is used rather than failing start-up.
    pub fn builtin() -> Engine {
        let model = BUILTIN
            .get_or_init(|| {
                Arc::new(Model::from_bytes(DEFAULT_MODEL).unwrap_or_else(|_| Model {
                    bias: 0.0,
                    weights: vec![0.0; features::DIM],
                    tag_weights: vec![0.0; TAGS.len()],
                    suspicious: 1.0,
                    spam: 4.0,
                }))
            })
            .clone();
        Engine::from_model(model)
    }

    pub fn from_model_bytes(b: &[u8]) -> Result<Engine, SpamError> {
        Ok(Engine::from_model(Arc::new(Model::from_bytes(b)?)))
    }

    pub(crate) fn from_model(model: Arc<Model>) -> Engine {
        let (suspicious, spam) = (model.suspicious, model.spam);
        let mut bits = vec![0u64; model.weights.len().div_ceil(64)];
        for (i, w) in model.weights.iter().enumerate() {
            if *w != 0.0 {
                bits[i >> 6] |= 1 << (i & 63);
            }
        }
        Engine {
            model,
            nonzero: Arc::new(bits),
            suspicious,
            spam,
        }
    }

    /// Overrides the thresholds (e.g. from `[spam]` in the config). `suspicious` is clamped to
    /// be at most `spam`.
    pub fn with_thresholds(mut self, suspicious: f64, spam: f64) -> Engine {
        self.spam = spam;
        self.suspicious = suspicious.min(spam);
        self
    }

    /// `(suspicious, spam)` in force.
    pub fn thresholds(&self) -> (f64, f64) {
        (self.suspicious, self.spam)
    }

    /// The model's own default thresholds (chosen at training time).
    pub fn default_thresholds(&self) -> (f64, f64) {
        (self.model.suspicious, self.model.spam)
    }

    pub(crate) fn model(&self) -> &Model {
        &self.model
    }

    /// (index, weight × value) for the features of a message that carry weight.
    pub(crate) fn contributions(&self, indices: &[u32]) -> Contribs {
        let v = features::token_value(indices.len());
        let set = |i: u32| {
            self.nonzero
                .get(i as usize >> 6)
                .is_some_and(|b| b & (1 << (i & 63)) != 0)
        };
        indices
            .iter()
            .filter(|&&i| set(i))
            .map(|&i| (i, f64::from(self.model.weights[i as usize] * v)))
            .collect()
    }

    pub fn scan(&self, raw: &[u8], ctx: &ScanContext<'_>) -> Verdict {
        self.scan_with_overlay(raw, ctx, None)
    }

    /// Scans with per-tenant learned adjustments on top of the model. Never panics: should
    /// anything inside panic, the message is called `suspicious` with reason `SCAN_ERROR`.
    pub fn scan_with_overlay(
        &self,
        raw: &[u8],
        ctx: &ScanContext<'_>,
        overlay: Option<&Overlay>,
    ) -> Verdict {
        catch_unwind(AssertUnwindSafe(|| {
            let a = self.analyse(raw, ctx);
            self.verdict(&a, overlay)
        }))
        .unwrap_or_else(|_| Verdict {
            score: self.suspicious,
            class: Class::Suspicious,
            reasons: vec![Reason {
                tag: "SCAN_ERROR".into(),
                weight: self.suspicious,
                detail: "the scanner failed on this message".into(),
            }],
        })
    }

    pub(crate) fn analyse(&self, raw: &[u8], ctx: &ScanContext<'_>) -> Analysis {
        let start = Instant::now();
        let budget = Budget::new(start, SCAN_BUDGET);
        let doc = parse::parse(raw);
        let indices = features::indices(&doc, &budget);
        let cx = Cx {
            doc: &doc,
            sender_domain: ctx.sender_domain,
            tenant_domains: ctx.tenant_domains,
        };
        let hits = signals::run(&cx);
        let out_of_time = budget.expired();
        Analysis {
            doc,
            indices,
            hits,
            out_of_time,
        }
    }

    fn class_of(&self, score: f64) -> Class {
        if score >= self.spam {
            Class::Spam
        } else if score >= self.suspicious {
            Class::Suspicious
        } else {
            Class::Clean
        }
    }

    pub(crate) fn verdict(&self, a: &Analysis, overlay: Option<&Overlay>) -> Verdict {
        let m = &self.model;
        let mut reasons = Vec::new();
        reasons.push(Reason {
            tag: outguard_types::verdict::MODEL_PRIOR.into(),
            weight: f64::from(m.bias),
            detail: "the model's starting point before any evidence".into(),
        });
        for h in &a.hits {
            let w = signals::tag_index(h.tag).map_or(0.0, |i| m.tag_weights[i]);
            reasons.push(Reason {
                tag: h.tag.into(),
                weight: f64::from(w * h.value),
                detail: h.detail.clone(),
            });
        }
        let contrib = self.contributions(&a.indices);
        let pos: f64 = contrib.iter().filter(|c| c.1 > 0.0).map(|c| c.1).sum();
        let neg: f64 = contrib.iter().filter(|c| c.1 < 0.0).map(|c| c.1).sum();
        let (top_pos, top_neg) = top_tokens(&contrib, 4);
        let labels = self.labels(&a.doc, top_pos.iter().chain(&top_neg).map(|c| c.0));
        reasons.push(Reason {
            tag: "TOKENS_SPAM".into(),
            weight: pos,
            detail: describe(&top_pos, &labels, "spam-like"),
        });
        reasons.push(Reason {
            tag: "TOKENS_HAM".into(),
            weight: neg,
            detail: describe(&top_neg, &labels, "ham-like"),
        });
        if let Some(o) = overlay {
            let w = o.contribution(&a.indices, &a.hits);
            if w != 0.0 {
                reasons.push(Reason {
                    tag: "TENANT_LEARNED".into(),
                    weight: w,
                    detail: "adjustments learned from this tenant's operators".into(),
                });
            }
        }
        if a.out_of_time {
            reasons.push(Reason {
                tag: "SCAN_TIME_LIMIT".into(),
                weight: 0.0,
                detail: "scan stopped at its time budget".into(),
            });
        }
        let score: f64 = reasons.iter().map(|r| r.weight).sum();
        reasons.sort_by(|x, y| y.weight.abs().total_cmp(&x.weight.abs()));
        Verdict {
            score,
            class: self.class_of(score),
            reasons,
        }
    }

    /// Human labels for a few feature indices (a second, label-building tokeniser pass).
    pub(crate) fn labels(
        &self,
        doc: &Doc,
        wanted: impl Iterator<Item = u32>,
    ) -> Vec<(u32, String)> {
        let mut want: Vec<(u32, String)> = wanted.map(|i| (i, String::new())).collect();
        if want.is_empty() {
            return want;
        }
        let budget = Budget::new(Instant::now(), SCAN_BUDGET);
        let mut missing = want.len();
        features::extract(doc, &budget, &mut |i, label| {
            if let Some(slot) = want.iter_mut().find(|w| w.0 == i && w.1.is_empty()) {
                slot.1 = label();
                missing -= 1;
            }
            missing > 0
        });
        want
    }
}

/// (feature index, signed contribution to the score).
pub(crate) type Contribs = Vec<(u32, f64)>;

/// The `n` strongest positive and negative feature contributions.
pub(crate) fn top_tokens(contrib: &[(u32, f64)], n: usize) -> (Contribs, Contribs) {
    let mut pos: Vec<(u32, f64)> = contrib.iter().copied().filter(|c| c.1 > 0.0).collect();
    let mut neg: Vec<(u32, f64)> = contrib.iter().copied().filter(|c| c.1 < 0.0).collect();
    pos.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    neg.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    pos.truncate(n);
    neg.truncate(n);
    (pos, neg)
}

fn describe(top: &[(u32, f64)], labels: &[(u32, String)], kind: &str) -> String {
    if top.is_empty() {
        return format!("no {kind} words");
    }
    let parts: Vec<String> = top
        .iter()
        .map(|(i, w)| {
            let l = labels
                .iter()
                .find(|l| l.0 == *i)
                .map(|l| l.1.as_str())
                .unwrap_or("?");
            format!("{l} {w:+.2}")
        })
        .collect();
    format!("{kind} words and phrases: {}", parts.join(", "))
}
