//! `[provider_deferrals]` (issue 25 part 5): delivery deferrals whose reply says the sending
//! domain or sender is the problem, not our IP — Gmail's `4.7.28 … unusual rate of unsolicited
//! mail … from your DKIM/SPF domain`, Yahoo's `TSS04`, Outlook's `4.7.650` — counted per sending
//! account and tenant (each message once) over `window`. From `account_after` such messages in
//! the window the account is alerted (`suspicious_sending_pattern`) and, with `restrict`, held
//! with its policy's spam action; a tenant is alerted from `tenant_after`, never restricted.
//! Traffic shaping (`[delivery.adaptive]`) still slows the (IP, destination) pair on the same
//! replies: this count is in addition to it.
//!
//! A pattern matches a reply when its pieces (split at `*`) occur in it in order, ignoring case.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::problems::Problems;
use super::values::human_duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderDeferralsConfig {
    /// Count provider deferrals per sender at all. Default true.
    pub enabled: bool,
    /// Reply patterns (`*` = any text, case ignored). Defaults: see [`default_sender_patterns`].
    pub patterns: Vec<String>,
    /// The sliding window (1m–30days). Default 24h.
    #[serde(with = "human_duration")]
    pub window: Duration,
    /// Deferred messages of one account in the window that make it a spam signal (1–100000).
    /// Default 10.
    pub account_after: u32,
    /// Deferred messages of one tenant in the window that alert its admins (1–1000000).
    /// Default 100.
    pub tenant_after: u32,
    /// Restrict the account with its policy's spam action besides the alert. Default true.
    pub restrict: bool,
}

/// The provider texts that blame the sender's domain or the sender: Gmail's domain variants of
/// `4.7.28` (its IP variant, "… originating from your IP address", is the IP's and left to
/// shaping), Yahoo's `TSS04` and Outlook's `4.7.650`.
pub fn default_sender_patterns() -> Vec<String> {
    [
        "4.7.28*unusual rate of unsolicited mail*domain",
        "TSS04",
        "4.7.650",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl Default for ProviderDeferralsConfig {
    fn default() -> Self {
        ProviderDeferralsConfig {
            enabled: true,
            patterns: default_sender_patterns(),
            window: Duration::from_secs(24 * 3600),
            account_after: 10,
            tenant_after: 100,
            restrict: true,
        }
    }
}

impl ProviderDeferralsConfig {
    pub const WINDOW_RANGE: (Duration, Duration) =
        (Duration::from_secs(60), Duration::from_secs(30 * 24 * 3600));

    /// Does `reply` match one of the patterns?
    pub fn matches(&self, reply: &str) -> bool {
        let reply = reply.to_ascii_lowercase();
        self.patterns.iter().any(|p| pattern_matches(p, &reply))
    }

    pub(super) fn check(&self, p: &mut Problems) {
        let key = "provider_deferrals";
        if self.enabled && self.patterns.is_empty() {
            p.add(
                format!("{key}.patterns"),
                "needs at least one pattern (or set enabled = false)",
            );
        }
        if let Some(i) = self
            .patterns
            .iter()
            .position(|s| s.split('*').all(|piece| piece.trim().is_empty()))
        {
            p.add(format!("{key}.patterns[{i}]"), "must contain some text");
        }
        let (lo, hi) = Self::WINDOW_RANGE;
        if self.window < lo || self.window > hi {
            p.add(
                format!("{key}.window"),
                format!(
                    "`{}` is outside 1m–30days",
                    humantime::format_duration(self.window)
                ),
            );
        }
        if !(1..=100_000).contains(&self.account_after) {
            p.add(
                format!("{key}.account_after"),
                format!("{} is outside 1–100000", self.account_after),
            );
        }
        if !(1..=1_000_000).contains(&self.tenant_after) {
            p.add(
                format!("{key}.tenant_after"),
                format!("{} is outside 1–1000000", self.tenant_after),
            );
        }
    }
}

/// `pattern`'s pieces (split at `*`) in `reply_lower` in order, ignoring case.
fn pattern_matches(pattern: &str, reply_lower: &str) -> bool {
    let mut rest = reply_lower;
    for piece in pattern.split('*').filter(|s| !s.is_empty()) {
        let piece = piece.to_ascii_lowercase();
        match rest.find(&piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_texts_that_blame_the_sender() {
        let c = ProviderDeferralsConfig::default();
        for (reply, want) in [
            (
                "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail from your DKIM domain. To protect our users...",
                true,
            ),
            (
                "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your SPF domain [x.example]",
                true,
            ),
            // The IP variant is the IP's problem: shaping, not the sender.
            (
                "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address",
                false,
            ),
            (
                "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints",
                true,
            ),
            (
                "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation",
                true,
            ),
            ("451 4.7.1 Greylisted, please try again later", false),
            ("421 4.7.28 rate limited", false),
        ] {
            assert_eq!(c.matches(reply), want, "{reply}");
        }
    }
}
