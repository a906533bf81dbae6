//! Recipient suppression (issue 25): what a hard bounce means for the tenant's next RCPT to the
//! same address, and what repeated sends to suppressed recipients say about the account.
//!
//! - [`suppresses`]: only `5.1.x` (bad destination mailbox or address) suppresses; a full
//!   mailbox, a policy refusal or a reply without an enhanced code never does.
//! - [`reject`]: `550 5.1.1` naming the suppression and until when, so the sender knows it is
//!   ours and not the destination's answer.
//! - [`note_refused`] / [`assess`]: each refused RCPT adds one to the account's hourly buckets
//!   (the signal store, in-process or Redis); from `signal_after` in the last 24 hours on, the
//!   account's messages are raised to suspicious with `SENT_TO_SUPPRESSED` in their reasons —
//!   a sender that keeps mailing dead addresses is buying or harvesting lists, or is not its
//!   owner any more.

use outguard_types::model::Millis;
use outguard_types::verdict::Verdict;

use crate::counters::CounterError;
use crate::notify::format_utc;
use crate::reply::Reject;
use crate::restriction::Subject;
use crate::signals::{SignalStore, raise_to_suspicious};

pub const SENT_TO_SUPPRESSED: &str = "SENT_TO_SUPPRESSED";

/// Hours looked back for the signal.
pub const SIGNAL_HOURS: u32 = 24;

/// Does this RFC 3463 status (`5.1.1`) suppress its recipient?
pub fn suppresses(status: &str) -> bool {
    status.starts_with("5.1.")
}

/// The RCPT refusal for a suppressed recipient.
pub fn reject(recipient: &str, until: Millis) -> Reject {
    Reject::new(
        550,
        "5.1.1",
        format!(
            "Recipient {recipient} is suppressed for this tenant after a hard bounce, until {}",
            format_utc(until)
        ),
    )
}

/// The signal store key of a subject's refused sends to suppressed recipients.
pub fn key(subject: &Subject) -> String {
    match subject {
        Subject::Account(a) => format!("supp:a:{}", a.to_ascii_lowercase()),
        Subject::Connector(c) => format!("supp:c:{c}"),
        Subject::Tenant(t) => format!("supp:t:{t}"),
    }
}

/// Count one refused RCPT to a suppressed recipient; returns the count of the last 24 hours.
pub async fn note_refused(
    store: &dyn SignalStore,
    subject: &Subject,
    now: Millis,
) -> Result<u64, CounterError> {
    let hours = store.hourly(&key(subject), 1, now, SIGNAL_HOURS).await?;
    Ok(hours.iter().sum())
}

/// Raise `v` to suspicious when the subject's refused sends to suppressed recipients in the last
/// 24 hours reached `signal_after`.
pub async fn assess(
    store: &dyn SignalStore,
    subject: &Subject,
    signal_after: u32,
    suspicious_at: f64,
    v: &mut Verdict,
    now: Millis,
) -> Result<(), CounterError> {
    let hours = store.hourly(&key(subject), 0, now, SIGNAL_HOURS).await?;
    let n: u64 = hours.iter().sum();
    if n >= u64::from(signal_after.max(1)) {
        let detail = format!(
            "{n} sends to suppressed (hard-bounced) recipients refused in the last 24 hours (signal at {signal_after})"
        );
        raise_to_suspicious(v, suspicious_at, SENT_TO_SUPPRESSED, detail);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bad_addresses_suppress() {
        for (s, want) in [
            ("5.1.1", true),
            ("5.1.10", true),
            ("5.1.2", true),
            ("5.2.2", false),
            ("5.7.1", false),
            ("5.0.0", false),
            ("4.1.1", false),
            ("", false),
        ] {
            assert_eq!(suppresses(s), want, "{s}");
        }
    }

    #[test]
    fn the_refusal_names_the_suppression() {
        let r = reject("gone@dest.example", 0);
        assert_eq!((r.code, r.enhanced.as_str()), (550, "5.1.1"));
        assert!(
            r.text.contains("gone@dest.example is suppressed"),
            "{}",
            r.text
        );
        assert!(r.text.contains("1970-01-01"), "{}", r.text);
    }
}
