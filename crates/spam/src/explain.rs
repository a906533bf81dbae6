//! `spam explain`: the verdict plus a table of every signal tag (fired or not) with the model's
//! weight for it, and the strongest word/phrase features on each side.

use std::fmt;

use serde::Serialize;

use crate::engine::{Engine, ScanContext, top_tokens};
use crate::overlay::Overlay;
use crate::signals::TAGS;
use outguard_types::verdict::Verdict;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExplainRow {
    pub tag: String,
    pub fired: bool,
    /// The model's learned weight for this tag.
    pub model_weight: f64,
    /// What it added to this message's score (0 when it did not fire).
    pub contribution: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Explanation {
    pub verdict: Verdict,
    pub tags: Vec<ExplainRow>,
    /// Strongest word/phrase/URL features: (label, weight), spam side then ham side.
    pub tokens: Vec<(String, f64)>,
}

impl Engine {
    pub fn explain(
        &self,
        raw: &[u8],
        ctx: &ScanContext<'_>,
        overlay: Option<&Overlay>,
    ) -> Explanation {
        let a = self.analyse(raw, ctx);
        let verdict = self.verdict(&a, overlay);
        let m = self.model();
        let tags = TAGS
            .iter()
            .enumerate()
            .map(|(i, tag)| {
                let hit = a.hits.iter().find(|h| h.tag == *tag);
                let w = f64::from(m.tag_weights[i]);
                ExplainRow {
                    tag: (*tag).to_string(),
                    fired: hit.is_some(),
                    model_weight: w,
                    contribution: hit.map_or(0.0, |h| w * f64::from(h.value)),
                    detail: hit.map(|h| h.detail.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let contrib = self.contributions(&a.indices);
        let (pos, neg) = top_tokens(&contrib, 10);
        let labels = self.labels(&a.doc, pos.iter().chain(&neg).map(|c| c.0));
        let tokens = pos
            .iter()
            .chain(&neg)
            .map(|(i, w)| {
                (
                    labels
                        .iter()
                        .find(|l| l.0 == *i)
                        .map(|l| l.1.clone())
                        .unwrap_or_default(),
                    *w,
                )
            })
            .collect();
        Explanation {
            verdict,
            tags,
            tokens,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.verdict;
        writeln!(f, "score {:.2}  class {}", v.score, v.class.as_str())?;
        writeln!(f, "\nreasons (sum = score):")?;
        for r in &v.reasons {
            writeln!(f, "  {:>+7.2}  {:<28} {}", r.weight, r.tag, r.detail)?;
        }
        writeln!(f, "\nall signal tags:")?;
        writeln!(
            f,
            "  {:<28} {:>5} {:>8} {:>8}  detail",
            "tag", "fired", "weight", "added"
        )?;
        for r in &self.tags {
            let fired = if r.fired { "yes" } else { "-" };
            writeln!(
                f,
                "  {:<28} {:>5} {:>+8.2} {:>+8.2}  {}",
                r.tag, fired, r.model_weight, r.contribution, r.detail
            )?;
        }
        writeln!(f, "\nstrongest word/phrase features:")?;
        for (l, w) in &self.tokens {
            writeln!(f, "  {w:>+7.3}  {l}")?;
        }
        Ok(())
    }
}
