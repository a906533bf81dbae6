//! `[suppression]` (issue 25): a recipient that hard-bounced (`5.1.x` at our delivery, or a
//! trusted DSN) is suppressed for the sending tenant for `duration`; RCPT to it gets
//! `550 5.1.1`. Sends to suppressed recipients are counted per account: from `signal_after` in
//! 24 hours on, the account's messages carry the `SENT_TO_SUPPRESSED` reason (a spam signal).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::problems::Problems;
use super::values::human_duration;

const DAY: u64 = 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionConfig {
    /// Suppress hard-bounced recipients at all. Default true.
    pub enabled: bool,
    /// How long a hard bounce suppresses its recipient (1m–365days). Default 30 days.
    #[serde(with = "human_duration")]
    pub duration: Duration,
    /// Refused sends to suppressed recipients in 24 hours from which the account's messages
    /// carry the `SENT_TO_SUPPRESSED` reason (1–100000). Default 5.
    pub signal_after: u32,
}

impl Default for SuppressionConfig {
    fn default() -> Self {
        SuppressionConfig {
            enabled: true,
            duration: Duration::from_secs(30 * DAY),
            signal_after: 5,
        }
    }
}

impl SuppressionConfig {
    pub const DURATION_RANGE: (Duration, Duration) =
        (Duration::from_secs(60), Duration::from_secs(365 * DAY));
    pub const MAX_SIGNAL_AFTER: u32 = 100_000;

    pub(super) fn check(&self, p: &mut Problems) {
        let (lo, hi) = Self::DURATION_RANGE;
        if self.duration < lo || self.duration > hi {
            p.add(
                "suppression.duration",
                format!(
                    "`{}` is outside 1m–365days",
                    humantime::format_duration(self.duration)
                ),
            );
        }
        if !(1..=Self::MAX_SIGNAL_AFTER).contains(&self.signal_after) {
            p.add(
                "suppression.signal_after",
                format!(
                    "{} is outside 1–{}",
                    self.signal_after,
                    Self::MAX_SIGNAL_AFTER
                ),
            );
        }
    }
}
