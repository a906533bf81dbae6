//! `[retention]` (issue 17): how long finished records are kept, per kind, and how the pruning
//! task paces itself. Pruning deletes in small batches (`batch` rows per statement, `pause`
//! between statements) every `interval`, so it never holds the store's writer for long.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::problems::Problems;
use super::values::human_duration;

const DAY: u64 = 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Trace events (`outguard trace`, the message pages), by the event's time. Default 30 days.
    #[serde(with = "human_duration")]
    pub trace: Duration,
    /// Finished message records (delivered, bounced, rejected, deleted) and their recipients, by
    /// receipt time; queued, deferred, held and quarantined messages are never pruned.
    /// Default 30 days.
    #[serde(with = "human_duration")]
    pub messages: Duration,
    /// Feedback-loop and DSN reports as received. Default 90 days.
    #[serde(with = "human_duration")]
    pub reports: Duration,
    /// The audit log. Default 365 days.
    #[serde(with = "human_duration")]
    pub audit: Duration,
    /// Alert records. Default 365 days.
    #[serde(with = "human_duration")]
    pub alerts: Duration,
    /// How often the pruning task runs. Default 1 hour.
    #[serde(with = "human_duration")]
    pub interval: Duration,
    /// Rows deleted per statement (1–10000). Default 500.
    pub batch: u32,
    /// Pause between two statements, so submissions' writes go first. Default 50 ms.
    #[serde(with = "human_duration")]
    pub pause: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            trace: Duration::from_secs(30 * DAY),
            messages: Duration::from_secs(30 * DAY),
            reports: Duration::from_secs(90 * DAY),
            audit: Duration::from_secs(365 * DAY),
            alerts: Duration::from_secs(365 * DAY),
            interval: Duration::from_secs(3600),
            batch: 500,
            pause: Duration::from_millis(50),
        }
    }
}

impl RetentionConfig {
    /// Shortest window of any kind: shorter would prune what is still being written about.
    pub const MIN_WINDOW: Duration = Duration::from_secs(60);
    /// Longest window (100 years; beyond, the Unix-ms cutoff arithmetic gains nothing).
    pub const MAX_WINDOW: Duration = Duration::from_secs(100 * 365 * DAY);
    pub const INTERVAL_RANGE: (Duration, Duration) =
        (Duration::from_secs(1), Duration::from_secs(DAY));
    pub const MAX_BATCH: u32 = 10_000;
    pub const MAX_PAUSE: Duration = Duration::from_secs(60);

    /// The windows by kind, as `(key, window)`.
    pub fn windows(&self) -> [(&'static str, Duration); 5] {
        [
            ("trace", self.trace),
            ("messages", self.messages),
            ("reports", self.reports),
            ("audit", self.audit),
            ("alerts", self.alerts),
        ]
    }

    pub(super) fn check(&self, p: &mut Problems) {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        for (key, w) in self.windows() {
            if w < Self::MIN_WINDOW || w > Self::MAX_WINDOW {
                p.add(
                    format!("retention.{key}"),
                    format!("`{}` is outside 1m–100years", show(w)),
                );
            }
        }
        let (lo, hi) = Self::INTERVAL_RANGE;
        if self.interval < lo || self.interval > hi {
            p.add(
                "retention.interval",
                format!("`{}` is outside 1s–24h", show(self.interval)),
            );
        }
        if !(1..=Self::MAX_BATCH).contains(&self.batch) {
            p.add(
                "retention.batch",
                format!("{} is outside 1–{}", self.batch, Self::MAX_BATCH),
            );
        }
        if self.pause > Self::MAX_PAUSE {
            p.add(
                "retention.pause",
                format!("`{}` is longer than 1m", show(self.pause)),
            );
        }
    }
}
