//! The spam engine's result for one message (SPEC §1 "verdict"). Produced by `outguard-spam`,
//! read by policy, disposition, trace and the API.

use serde::{Deserialize, Serialize};

/// How a message was classed. `Suspicious` and `Spam` both count as "called spam" (SPEC §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Clean,
    Suspicious,
    Spam,
}

impl Class {
    /// True for the classes that count as spam for pools, counters and `spam eval`.
    pub fn is_spam(self) -> bool {
        !matches!(self, Class::Clean)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Clean => "clean",
            Class::Suspicious => "suspicious",
            Class::Spam => "spam",
        }
    }
}

/// The tag of the model's starting point (its bias): part of the score's sum, but not evidence
/// about the message, so never named as a reason it was called spam.
pub const MODEL_PRIOR: &str = "MODEL_PRIOR";

/// One reason that moved the score: a stable tag, its signed contribution, and a human sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub tag: String,
    pub weight: f64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub score: f64,
    pub class: Class,
    /// Strongest first (by absolute weight).
    pub reasons: Vec<Reason>,
}
