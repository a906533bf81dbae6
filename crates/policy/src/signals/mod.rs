//! Sender signals beside the content scan (issue 19): what an account's (or connector's) own
//! recent behaviour says about its next message.
//!
//! - [`reputation`]: once a sender's message is called spam, its next messages leave from
//!   `high-risk` (`ACCOUNT_RECENT_SPAM`) until it has sent [`reputation::CLEAN_TO_CLEAR`] clean
//!   messages in a row or an admin clears it.
//! - [`pattern`]: a burst that breaks the sender's own hourly history raises
//!   `SUSPICIOUS_SENDING_PATTERN`, which counts as a spam signal for the thresholds.
//! - [`campaign`]: a short-lived fuzzy fingerprint of each body; near-duplicates from at least
//!   three senders within an hour, one of them called spam, make the others suspicious
//!   (`CAMPAIGN_MATCH`).
//!
//! The state lives behind [`SignalStore`], a narrow trait beside [`crate::Counters`] with the
//! same two backends (in-process, persisted with the counters' snapshot; Redis in cluster mode).
//! Every operation is bounded: hourly buckets for a week, capped sets and lists, expiries.

pub mod campaign;
pub mod conformance;
pub mod pattern;
pub mod reputation;

use outguard_types::model::Millis;
use outguard_types::verdict::{Class, Reason, Verdict};

use crate::counters::CounterFuture;

/// The state the sender signals keep. Contract, for every backend:
/// - `reputation(key, spam, clear_after)` records one outcome and returns the sender's state
///   *before* it: `Some(k)` = under reputation with `k` clean messages since its latest spam,
///   `None` = not under reputation. A spam outcome sets the state to `Some(0)`; a clean one
///   adds one, and the state ends (`None`) once `k` reaches `clear_after`.
///   The state expires [`reputation::REPUTATION_TTL_MS`] after the latest outcome recorded in
///   it (`now`): a sender silent that long is not under reputation any more.
/// - `clear_reputation(key)` ends it at once; true when there was one.
///   `peek_reputation(key, now)` reads the state without recording.
/// - `hourly(key, n, now, hours)` adds `n` to the bucket of `now`'s UTC hour and returns the
///   last `hours` buckets, the current hour first (missing hours are 0).
/// - `first_seen(key, members, now, ttl_ms, cap)` adds the members to a set that lives
///   `ttl_ms` after its latest addition and holds at most `cap` members (more are not added);
///   returns how many of them were not in it before.
/// - `mark(key, at, ttl_ms)` remembers the latest time something happened to a key (a later
///   `at` replaces an earlier one, never the reverse), forgotten `ttl_ms` after `at`;
///   `last_mark(key, now)` reads it (None when never marked or expired by `now`).
/// - `near(keys, member, now, window_ms, cap)` appends `member` at `now` to each timed list of
///   `keys` (entries older than `window_ms` dropped, at most `cap` kept, newest) and returns the
///   distinct members the lists held before, within the window.
///
/// Time is the caller's `now` on every backend: the buckets are an hour and the campaign window
/// an hour, so a node clock a few seconds off changes nothing that matters, and the tests can
/// travel in time.
pub trait SignalStore: Send + Sync {
    fn reputation<'a>(
        &'a self,
        key: &'a str,
        spam: bool,
        clear_after: u32,
        now: Millis,
    ) -> CounterFuture<'a, Option<u32>>;

    fn clear_reputation<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool>;

    /// The state `reputation` would return, without recording anything.
    fn peek_reputation<'a>(&'a self, key: &'a str, now: Millis) -> CounterFuture<'a, Option<u32>>;

    fn hourly<'a>(
        &'a self,
        key: &'a str,
        n: u64,
        now: Millis,
        hours: u32,
    ) -> CounterFuture<'a, Vec<u64>>;

    fn first_seen<'a>(
        &'a self,
        key: &'a str,
        members: &'a [String],
        now: Millis,
        ttl_ms: i64,
        cap: usize,
    ) -> CounterFuture<'a, u32>;

    fn mark<'a>(&'a self, key: &'a str, at: Millis, ttl_ms: i64) -> CounterFuture<'a, ()>;

    fn last_mark<'a>(&'a self, key: &'a str, now: Millis) -> CounterFuture<'a, Option<Millis>>;

    fn near<'a>(
        &'a self,
        keys: &'a [String],
        member: &'a str,
        now: Millis,
        window_ms: i64,
        cap: usize,
    ) -> CounterFuture<'a, Vec<String>>;
}

/// The UTC hour `now` falls in (bucket index).
pub fn hour_of(now: Millis) -> i64 {
    now.div_euclid(crate::counters::HOUR_MS)
}

pub const ACCOUNT_RECENT_SPAM: &str = "ACCOUNT_RECENT_SPAM";
pub const SUSPICIOUS_SENDING_PATTERN: &str = "SUSPICIOUS_SENDING_PATTERN";
pub const CAMPAIGN_MATCH: &str = "CAMPAIGN_MATCH";

/// Raise `v` to at least `suspicious` because of a sender signal: the reason's weight is what
/// lifts the score to the suspicious threshold (so the reasons still add up to the score), and
/// a message already called spam keeps its class and gets the reason with weight 0, for the
/// trace.
pub fn raise_to_suspicious(v: &mut Verdict, suspicious_at: f64, tag: &str, detail: String) {
    let weight = if v.class.is_spam() {
        0.0
    } else {
        (suspicious_at - v.score).max(0.0)
    };
    v.score += weight;
    if !v.class.is_spam() {
        v.class = Class::Suspicious;
    }
    v.reasons.insert(
        0,
        Reason {
            tag: tag.to_string(),
            weight,
            detail,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(score: f64, class: Class) -> Verdict {
        Verdict {
            score,
            class,
            reasons: vec![],
        }
    }

    #[test]
    fn raising_keeps_reasons_summing_to_the_score() {
        let mut clean = v(1.5, Class::Clean);
        raise_to_suspicious(&mut clean, 5.0, CAMPAIGN_MATCH, "x".into());
        assert_eq!(clean.class, Class::Suspicious);
        assert!((clean.score - 5.0).abs() < 1e-9);
        assert!((clean.reasons[0].weight - 3.5).abs() < 1e-9);
        let mut spam = v(9.0, Class::Spam);
        raise_to_suspicious(&mut spam, 5.0, CAMPAIGN_MATCH, "x".into());
        assert_eq!(spam.class, Class::Spam);
        assert_eq!(spam.score, 9.0);
        assert_eq!(spam.reasons[0].weight, 0.0);
    }

    #[test]
    fn hours_are_utc_buckets() {
        assert_eq!(hour_of(0), 0);
        assert_eq!(hour_of(3_599_999), 0);
        assert_eq!(hour_of(3_600_000), 1);
    }
}
