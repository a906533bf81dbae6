//! Provider deferrals attributed to the sender (issue 25 part 5): a mailbox provider that
//! defers our mail saying the sending domain or sender is the problem (Gmail's `4.7.28 …
//! unusual rate of unsolicited mail … from your DKIM domain`, Yahoo's `TSS04`, Outlook's
//! `4.7.650`) is judging the *sender*, whatever IP it came from. Each such message counts once
//! for its account and tenant over `[provider_deferrals] window`; [`judge`] turns a count at its
//! line into a [`Crossing`]: `suspicious_sending_pattern` for the account (and, by the policy's
//! spam action, a restriction) or for the tenant (alert only). Which replies match is the
//! config's (`ProviderDeferralsConfig::matches`); counting is the relay's.

use crate::AlertKind;
use crate::crossing::Crossing;
use crate::reply::Measure;
use crate::restriction::{LimitKind, Subject};

/// Counter name (under `keys::account` / `keys::tenant`).
pub const COUNTER: &str = "provider_deferral";
/// The tag in the trace.
pub const PROVIDER_DEFERRALS: &str = "PROVIDER_DEFERRALS";

/// The crossing when `count` messages of `subject` deferred in the window reached `line`.
pub fn judge<'a>(
    subject: Subject,
    tenant: &'a str,
    count: u64,
    line: u32,
    window: &str,
    latest_reply: &str,
) -> Option<Crossing<'a>> {
    if count < u64::from(line.max(1)) {
        return None;
    }
    let what = format!("messages deferred by mailbox providers blaming the sender in {window}");
    let mut reply: String = latest_reply.chars().take(200).collect();
    if reply.len() < latest_reply.len() {
        reply.push('…');
    }
    let summary = format!(
        "{PROVIDER_DEFERRALS}: {}: {count} {what} (line {line}); latest: {reply}",
        subject.id()
    );
    Some(Crossing {
        subject,
        tenant,
        kind: AlertKind::SuspiciousSendingPattern,
        limit: LimitKind::ProviderDeferrals,
        summary,
        measures: vec![Measure::new(what, count, u64::from(line))],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_reached_not_passed() {
        let bob = || Subject::Account("bob@a.example".into());
        assert!(judge(bob(), "a", 9, 10, "24h", "421 TSS04").is_none());
        let c = judge(bob(), "a", 10, 10, "24h", "421 4.7.0 [TSS04] deferred").expect("crossing");
        assert_eq!(c.limit, LimitKind::ProviderDeferrals);
        assert!(
            c.summary.contains(
                "10 messages deferred by mailbox providers blaming the sender in 24h (line 10)"
            ),
            "{}",
            c.summary
        );
        assert!(c.summary.contains("[TSS04]"), "{}", c.summary);
        let long = "x".repeat(1000);
        let c = judge(bob(), "a", 10, 10, "24h", &long).expect("crossing");
        assert!(c.summary.len() < 500);
    }
}
