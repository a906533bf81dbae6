//! `[trust_ramp]` (issue 25): a new account, or one whose restriction ended, starts with
//! `start_percent` of its policy's recipient limits, growing linearly with clean days to the
//! full limits after `days`. Off by default: turning it on changes the limits every account
//! younger than `days` has today.

use serde::{Deserialize, Serialize};

use super::problems::Problems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustRampConfig {
    /// Apply the ramp. Default false.
    pub enabled: bool,
    /// Percent of the limits on the first day (1–100). Default 10.
    pub start_percent: u32,
    /// Clean days until the full limits (1–365). Default 14.
    pub days: u32,
}

impl Default for TrustRampConfig {
    fn default() -> Self {
        TrustRampConfig {
            enabled: false,
            start_percent: 10,
            days: 14,
        }
    }
}

impl TrustRampConfig {
    pub(super) fn check(&self, p: &mut Problems) {
        if !(1..=100).contains(&self.start_percent) {
            p.add(
                "trust_ramp.start_percent",
                format!("{} is outside 1–100", self.start_percent),
            );
        }
        if !(1..=365).contains(&self.days) {
            p.add("trust_ramp.days", format!("{} is outside 1–365", self.days));
        }
    }
}
