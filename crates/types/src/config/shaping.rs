//! Traffic shaping (issue 22 part 2): `[[shaping]]` rules that cap what one source IP sends to
//! one destination (connections, messages per connection, messages per minute), and
//! `[delivery.adaptive]`, how delivery reacts when a receiver says it is throttling us (a 4xx
//! whose text matches one of `patterns`). Without `[[shaping]]` in the file the rules are
//! `default_rules()`, conservative limits for the largest mailbox providers, written out in
//! `outguard.example.toml`; a file with `[[shaping]]` replaces the whole list.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::problems::Problems;
use super::values::{human_duration, valid_dns_name};

/// One `[[shaping]]` rule. The first rule (in file order) whose destination and source match a
/// delivery applies to it; a delivery no rule matches has no limit beyond `[delivery]`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapingRule {
    /// A recipient domain (`gmail.com`) or a suffix of the domain or of its MX host names
    /// (`*.google.com` matches `gmail-smtp-in.l.google.com`).
    pub destination: String,
    /// Only deliveries from this pool (absent: every pool).
    #[serde(default)]
    pub pool: Option<String>,
    /// Only deliveries from this source address (absent: every address).
    #[serde(default)]
    pub source_ip: Option<IpAddr>,
    /// Concurrent connections per source IP to this destination.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Messages sent over one connection before it is closed rather than reused.
    #[serde(default)]
    pub max_messages_per_connection: Option<u32>,
    /// Messages per minute per source IP to this destination (spaced evenly).
    #[serde(default)]
    pub messages_per_minute: Option<u32>,
}

/// The rules when the file has no `[[shaping]]`: starting points for a fresh IP at the largest
/// mailbox providers (not their published limits; they publish none), matched on MX names.
pub fn default_rules() -> Vec<ShapingRule> {
    let rule = |destination: &str, conns: usize, per_conn: u32, per_minute: u32| ShapingRule {
        destination: destination.to_string(),
        pool: None,
        source_ip: None,
        max_connections: Some(conns),
        max_messages_per_connection: Some(per_conn),
        messages_per_minute: Some(per_minute),
    };
    vec![
        rule("*.google.com", 20, 50, 600),
        rule("*.outlook.com", 10, 100, 300),
        rule("*.yahoodns.net", 10, 20, 300),
        rule("*.icloud.com", 10, 20, 120),
    ]
}

/// What a throttling reply does to the (source IP, destination) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleAction {
    /// Halve the pair's rate (down to `min_messages_per_minute`; a throttle at the floor
    /// suspends it for `suspend_for`).
    Halve,
    /// Send nothing on the pair for `suspend_for`, then resume at the previous rate.
    Suspend,
}

/// `[delivery.adaptive]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    /// Off: 4xx replies only take the retry schedule, as before issue 22.
    pub enabled: bool,
    /// Case-insensitive substrings of a 4xx reply (or of a refused greeting) that mean "you
    /// are sending too fast".
    pub patterns: Vec<String>,
    pub action: ThrottleAction,
    /// How long a suspended pair sends nothing.
    #[serde(with = "human_duration")]
    pub suspend_for: Duration,
    /// Successes in a row that double a slowed pair's rate (until it is back to its rule's).
    pub restore_after: u32,
    /// The floor a slowed pair's rate is halved down to.
    pub min_messages_per_minute: u32,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            enabled: true,
            patterns: default_patterns(),
            action: ThrottleAction::Halve,
            suspend_for: Duration::from_secs(600),
            restore_after: 20,
            min_messages_per_minute: 1,
        }
    }
}

/// What the big providers say when they throttle: Gmail `4.7.28` / "rate limited", Outlook
/// `4.7.650` and `4.7.500` ("Server busy. Please try again later"), Yahoo and AOL `TSS04` /
/// "temporarily deferred", Microsoft's `RLY:` codes, and "too many connections". A bare "try
/// again later" is left out on purpose: greylisting ("451 4.7.1 Greylisted, please try again
/// later") and every kind of local error say it, and they are no reason to slow a destination.
pub fn default_patterns() -> Vec<String> {
    [
        "rate limited",
        "rate limit",
        "too many connections",
        "too many messages",
        "temporarily deferred",
        "4.7.28",
        "4.7.650",
        "4.7.500",
        "TSS04",
        "RLY:",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl AdaptiveConfig {
    pub(super) fn check(&self, p: &mut Problems) {
        let key = "delivery.adaptive";
        if self.enabled && self.patterns.is_empty() {
            p.add(
                format!("{key}.patterns"),
                "needs at least one pattern (or set enabled = false)",
            );
        }
        if let Some(i) = self.patterns.iter().position(|s| s.trim().is_empty()) {
            p.add(format!("{key}.patterns[{i}]"), "must not be empty");
        }
        if self.suspend_for < Duration::from_secs(1) {
            p.add(format!("{key}.suspend_for"), "must be at least 1s");
        }
        if self.restore_after == 0 {
            p.add(format!("{key}.restore_after"), "must be at least 1");
        }
        if self.min_messages_per_minute == 0 {
            p.add(
                format!("{key}.min_messages_per_minute"),
                "must be at least 1",
            );
        }
    }
}

/// Is `d` a valid rule destination: a domain, or `*.` and a domain.
fn valid_destination(d: &str) -> bool {
    valid_dns_name(d.strip_prefix("*.").unwrap_or(d))
}

/// Check every rule; `pools` are the configured pool names.
pub(super) fn check_rules(rules: &[ShapingRule], pools: &[&str], p: &mut Problems) {
    for (i, r) in rules.iter().enumerate() {
        let key = |k: &str| format!("shaping[{i}].{k}");
        if !valid_destination(&r.destination) {
            p.add(
                key("destination"),
                format!(
                    "`{}` is not a domain or `*.` and a domain suffix",
                    r.destination
                ),
            );
        }
        if let Some(pool) = &r.pool
            && !pools.contains(&pool.as_str())
        {
            p.add(key("pool"), format!("no pool is named `{pool}`"));
        }
        if r.max_connections == Some(0) {
            p.add(key("max_connections"), "must be at least 1");
        }
        if r.max_messages_per_connection == Some(0) {
            p.add(key("max_messages_per_connection"), "must be at least 1");
        }
        if r.messages_per_minute == Some(0) {
            p.add(key("messages_per_minute"), "must be at least 1");
        }
        if r.max_connections.is_none()
            && r.max_messages_per_connection.is_none()
            && r.messages_per_minute.is_none()
        {
            p.add(
                key("destination"),
                "the rule sets no limit (max_connections, max_messages_per_connection or messages_per_minute)",
            );
        }
    }
}
