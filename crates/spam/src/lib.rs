//! outguard-spam: the in-process spam engine. Raw message -> bounded MIME parse (`parse`) ->
//! hashed word/bigram/header/URL features (`features`) + structural signals (`signals/`, one file
//! each) -> a logistic-regression model whose weights, tag weights included, are learned on the
//! corpus TRAIN split (`train`, `corpus`) -> `Verdict { score, class, reasons }` (`engine`).
//! The score is log-odds of spam and the reasons' weights add up to it, so every verdict
//! explains itself. Per-tenant operator feedback lives in an `Overlay`.

pub mod corpus;
mod engine;
mod error;
pub mod eval;
mod explain;
pub mod features;
pub mod html;
pub mod limits;
pub mod model;
mod overlay;
pub mod parse;
pub mod signals;
pub mod synth;
pub mod train;
pub mod urls;

pub use engine::{Engine, ScanContext};
pub use error::SpamError;
pub use eval::EvalReport;
pub use explain::{ExplainRow, Explanation};
pub use outguard_types::verdict::{Class, Reason, Verdict};
pub use overlay::Overlay;
