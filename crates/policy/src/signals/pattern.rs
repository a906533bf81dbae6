//! `SUSPICIOUS_SENDING_PATTERN`: a burst that breaks the sender's own history (issue 19).
//!
//! Kept per sender in hourly buckets for a week (168 numbers per series, so memory is bounded
//! and a check is a handful of store operations): recipients per hour, and first-time
//! recipient domains per hour (a domain is "first-time" when the sender has not written to it
//! in the last 30 days; at most [`DOMAIN_CAP`] remembered per sender).
//!
//! The signal fires when this hour's count reaches `K` × the sender's 7-day hourly p99 (over
//! the hours it sent anything; below 100 such hours the p99 is the maximum) and is at least the
//! floor. A sender with fewer than [`MIN_ACTIVE_HOURS`] hours of history is held to its tenant's
//! baseline (the same figure over the tenant's whole mail, which is never below any one
//! sender's); a tenant without history either has no baseline, and only the floors apply.
//!
//! A burst of mail whose body the sender already sent in an earlier hour of the week (same
//! fingerprint, digits folded: the month-end invoice run) does not raise the signal: what breaks the pattern is volume *and*
//! novelty, which is what a compromised account looks like.
//!
//! It is a spam *signal*, not a verdict: it adds [`WEIGHT`] to the message's score, so mail the
//! engine finds borderline is called suspicious when it comes in a burst, while a clean
//! newsletter (bursty by nature) stays clean. The trace names the numbers.

use outguard_types::model::Millis;
use outguard_types::verdict::Reason;

use super::{SUSPICIOUS_SENDING_PATTERN, SignalStore};
use crate::counters::{CounterError, DAY_MS};
use crate::restriction::Subject;

/// A week of hourly buckets.
pub const HISTORY_HOURS: u32 = 168;
/// A burst is this many times the history's p99.
pub const K: u64 = 3;
/// Hours with mail the sender needs before its own history is the baseline.
pub const MIN_ACTIVE_HOURS: usize = 3;
/// Never a burst below these (recipients / first-time domains in one hour).
pub const RCPT_FLOOR: u64 = 100;
pub const NEW_DOMAIN_FLOOR: u64 = 10;
/// How long a recipient domain is remembered, and how many per sender.
pub const DOMAIN_TTL_MS: i64 = 30 * DAY_MS;
pub const DOMAIN_CAP: usize = 5_000;
/// What the signal adds to the score: enough to lift mail the engine finds borderline over the
/// suspicious threshold (the builtin model's is 2.3, its spam threshold 3.3), far too little
/// to make mail it calls clearly clean (newsletters score below 0) suspicious.
pub const WEIGHT: f64 = 1.0;

/// One message's sending facts.
pub struct Sending<'a> {
    pub subject: &'a Subject,
    pub tenant: &'a str,
    /// The recipients' domains, lowercase, each once.
    pub domains: &'a [String],
    pub recipients: u64,
    /// The body's campaign fingerprint, when it has one.
    pub fingerprint: Option<u64>,
}

fn key(subject: &Subject, what: &str) -> String {
    match subject {
        Subject::Account(a) => format!("sig:a:{}:{what}", a.to_ascii_lowercase()),
        Subject::Connector(c) => format!("sig:c:{c}:{what}"),
        Subject::Tenant(t) => format!("sig:t:{t}:{what}"),
    }
}

/// p99 (nearest rank) of the hours with mail, or None below `min` such hours.
pub fn active_p99(history: &[u64], min: usize) -> Option<u64> {
    let mut active: Vec<u64> = history.iter().copied().filter(|n| *n > 0).collect();
    if active.len() < min.max(1) {
        return None;
    }
    active.sort_unstable();
    let rank = (active.len() * 99).div_ceil(100).max(1);
    Some(active[rank - 1])
}

/// What one series says about this hour: `(this hour, threshold, baseline source)`.
fn judge(own: &[u64], tenant: &[u64], floor: u64) -> (u64, u64, &'static str) {
    let now = own.first().copied().unwrap_or(0);
    let (base, from) = match active_p99(own.get(1..).unwrap_or(&[]), MIN_ACTIVE_HOURS) {
        Some(p) => (Some(p), "its own 7-day hourly p99"),
        None => match active_p99(tenant.get(1..).unwrap_or(&[]), MIN_ACTIVE_HOURS) {
            Some(p) => (Some(p), "its tenant's 7-day hourly p99"),
            None => (None, "no history"),
        },
    };
    let threshold = base.map_or(floor, |b| (K * b).max(floor));
    (now, threshold, from)
}

/// Count this message and say whether it breaks the sender's pattern.
pub async fn assess(
    store: &dyn SignalStore,
    s: &Sending<'_>,
    now: Millis,
) -> Result<Option<Reason>, CounterError> {
    let new = store
        .first_seen(
            &key(s.subject, "domains"),
            s.domains,
            now,
            DOMAIN_TTL_MS,
            DOMAIN_CAP,
        )
        .await?;
    let tenant = Subject::Tenant(s.tenant.to_string());
    let h = HISTORY_HOURS;
    let rcpt = store
        .hourly(&key(s.subject, "rcpt"), s.recipients, now, h)
        .await?;
    let t_rcpt = store
        .hourly(&key(&tenant, "rcpt"), s.recipients, now, h)
        .await?;
    let fresh = store
        .hourly(&key(s.subject, "newdom"), u64::from(new), now, h)
        .await?;
    let t_fresh = store
        .hourly(&key(&tenant, "newdom"), u64::from(new), now, h)
        .await?;
    // Familiar mail: this sender sent this very body (digits folded) in an earlier hour of the
    // week. Mail repeated within the burst's own hour is not familiar: that is the burst.
    let familiar = match s.fingerprint {
        Some(fp) => store
            .hourly(
                &key(s.subject, &format!("body:{fp:016x}")),
                1,
                now,
                HISTORY_HOURS,
            )
            .await?
            .iter()
            .skip(1)
            .any(|n| *n > 0),
        None => false,
    };
    if familiar {
        return Ok(None);
    }
    let mut why = Vec::new();
    let (n, limit, from) = judge(&rcpt, &t_rcpt, RCPT_FLOOR);
    if n >= limit {
        why.push(format!(
            "{n} recipients this hour ≥ {limit} ({K} × {from}, floor {RCPT_FLOOR})"
        ));
    }
    let (n, limit, from) = judge(&fresh, &t_fresh, NEW_DOMAIN_FLOOR);
    if new > 0 && n >= limit {
        why.push(format!(
            "{n} first-time recipient domains this hour ≥ {limit} ({K} × {from}, floor {NEW_DOMAIN_FLOOR})"
        ));
    }
    Ok((!why.is_empty()).then(|| Reason {
        tag: SUSPICIOUS_SENDING_PATTERN.into(),
        weight: WEIGHT,
        detail: format!("sending breaks this sender's history: {}", why.join("; ")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_over_active_hours() {
        assert_eq!(active_p99(&[0, 0, 5], 1), Some(5));
        assert_eq!(active_p99(&[0, 0, 5], 3), None);
        let mut h = vec![1u64; 150];
        h[3] = 900;
        h[7] = 800;
        // 150 active hours: rank 149 of the sorted values is the second largest.
        assert_eq!(active_p99(&h, 3), Some(800));
    }

    #[test]
    fn judge_uses_own_then_tenant_then_floor() {
        let own = [40, 10, 12, 9, 0];
        assert_eq!(judge(&own, &[], 100), (40, 100, "its own 7-day hourly p99"));
        let own = [400, 100, 120, 90];
        assert_eq!(judge(&own, &[], 100).1, 360);
        let fresh = [400, 0, 0];
        let tenant = [400, 200, 150, 90];
        assert_eq!(
            judge(&fresh, &tenant, 100),
            (400, 600, "its tenant's 7-day hourly p99")
        );
        assert_eq!(judge(&fresh, &[0, 0], 100), (400, 100, "no history"));
    }
}
