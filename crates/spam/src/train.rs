//! Training: logistic regression with FTRL-Proximal over the hashed features plus one feature
//! per signal tag (so tag weights are learned, never hand-set). Deterministic: a fixed sample
//! order from a seeded xorshift shuffle, f64 arithmetic, and quantised output.

use std::time::{Duration, Instant};

use crate::features::{self, DIM};
use crate::limits::Budget;
use crate::model::Model;
use crate::parse;
use crate::signals::{self, Cx, TAGS};

/// One training example: sorted feature indices (tags at `DIM + tag_index`) and values.
#[derive(Debug, Clone)]
pub struct Sample {
    pub feats: Vec<(u32, f32)>,
    pub is_spam: bool,
}

/// FTRL-Proximal hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub alpha: f64,
    pub beta: f64,
    pub l1: f64,
    pub l2: f64,
    pub epochs: usize,
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            alpha: 0.3,
            beta: 1.0,
            l1: 0.5,
            l2: 5.0,
            epochs: 8,
            seed: 0x0005_eed0_f0a7,
        }
    }
}

/// Features exactly as the engine sees them (no sender context at training time).
pub fn sample(raw: &[u8], is_spam: bool) -> Sample {
    // Training is offline: a generous budget so a slow machine gives the same features.
    let budget = Budget::new(Instant::now(), Duration::from_secs(3600));
    let doc = parse::parse(raw);
    let idx = features::indices(&doc, &budget);
    let v = features::token_value(idx.len());
    let mut feats: Vec<(u32, f32)> = idx.into_iter().map(|i| (i, v)).collect();
    let cx = Cx {
        doc: &doc,
        sender_domain: None,
        tenant_domains: &[],
    };
    for h in signals::run(&cx) {
        if let Some(t) = signals::tag_index(h.tag) {
            feats.push(((DIM + t) as u32, h.value));
        }
    }
    Sample { feats, is_spam }
}

struct Ftrl {
    p: Params,
    z: Vec<f64>,
    n: Vec<f64>,
}

impl Ftrl {
    fn new(p: Params, dims: usize) -> Ftrl {
        Ftrl {
            p,
            z: vec![0.0; dims],
            n: vec![0.0; dims],
        }
    }

    fn weight(&self, i: usize) -> f64 {
        let z = self.z[i];
        if z.abs() <= self.p.l1 {
            return 0.0;
        }
        -(z - z.signum() * self.p.l1)
            / ((self.p.beta + self.n[i].sqrt()) / self.p.alpha + self.p.l2)
    }

    fn margin(&self, s: &Sample, bias: usize) -> f64 {
        self.weight(bias)
            + s.feats
                .iter()
                .map(|(i, x)| self.weight(*i as usize) * f64::from(*x))
                .sum::<f64>()
    }

    fn update(&mut self, s: &Sample, bias: usize) {
        let p = sigmoid(self.margin(s, bias));
        let g = p - if s.is_spam { 1.0 } else { 0.0 };
        let all = s
            .feats
            .iter()
            .copied()
            .chain(std::iter::once((bias as u32, 1.0f32)));
        for (i, x) in all {
            let i = i as usize;
            let gi = g * f64::from(x);
            let w = self.weight(i);
            let sigma = ((self.n[i] + gi * gi).sqrt() - self.n[i].sqrt()) / self.p.alpha;
            self.z[i] += gi - sigma * w;
            self.n[i] += gi * gi;
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Trains a model (thresholds left for the caller to set). Samples are visited in a shuffled
/// but seed-fixed order each epoch.
pub fn fit(samples: &[Sample], p: Params) -> Model {
    let bias = DIM + TAGS.len();
    let mut f = Ftrl::new(p, bias + 1);
    let mut order: Vec<usize> = (0..samples.len()).collect();
    let mut rng = p.seed | 1;
    for _ in 0..p.epochs {
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &k in &order {
            f.update(&samples[k], bias);
        }
    }
    Model {
        bias: f.weight(bias) as f32,
        weights: (0..DIM).map(|i| f.weight(i) as f32).collect(),
        tag_weights: (0..TAGS.len()).map(|t| f.weight(DIM + t) as f32).collect(),
        suspicious: 0.0,
        spam: 0.0,
    }
    .quantised()
}

/// Score of a training sample under a model (same sum as `Engine::scan`, without labels).
pub fn score(m: &Model, s: &Sample) -> f64 {
    f64::from(m.bias)
        + s.feats
            .iter()
            .map(|(i, x)| {
                let i = *i as usize;
                let w = if i < DIM {
                    m.weights[i]
                } else {
                    m.tag_weights.get(i - DIM).copied().unwrap_or(0.0)
                };
                f64::from(w * x)
            })
            .sum::<f64>()
}
