//! Account (and connector) reputation: once a sender's message is called spam, its next
//! messages leave from `high-risk` until it has sent [`CLEAN_TO_CLEAR`] clean messages in a row
//! or an admin clears it (`restricted clear-reputation`). Trace reason `ACCOUNT_RECENT_SPAM`.
//!
//! Why 20: a compromised account's spam mixes with mail the engine calls clean (the run
//! got 7 of 17 spam messages out from regular IPs, each scored clean), and the spam ratio
//! limit already looks at the last 20 messages; 20 clean messages in a row is the point where
//! that window holds no spam at all. A sender with an occasional false positive pays 20
//! messages from `high-risk` (delivered, only from other IPs), not a restriction.

use outguard_types::model::Millis;
use outguard_types::verdict::{Class, Reason};

use super::{ACCOUNT_RECENT_SPAM, SignalStore};
use crate::counters::CounterError;
use crate::restriction::Subject;

/// Clean messages in a row that end the reputation state.
pub const CLEAN_TO_CLEAR: u32 = 20;

/// A sender silent this long loses its reputation state, on every backend (the stores would
/// otherwise keep it forever).
pub const REPUTATION_TTL_MS: i64 = 90 * 86_400_000;

/// The store key of a subject's reputation.
pub fn key(subject: &Subject) -> String {
    match subject {
        Subject::Account(a) => format!("rep:a:{}", a.to_ascii_lowercase()),
        Subject::Connector(c) => format!("rep:c:{c}"),
        Subject::Tenant(t) => format!("rep:t:{t}"),
    }
}

/// Record this message's final class for its sender. Returns the `ACCOUNT_RECENT_SPAM` reason
/// when a message not itself called spam must still leave from `high-risk`.
pub async fn note(
    store: &dyn SignalStore,
    subject: &Subject,
    class: Class,
    now: Millis,
) -> Result<Option<Reason>, CounterError> {
    let before = store
        .reputation(&key(subject), class.is_spam(), CLEAN_TO_CLEAR, now)
        .await?;
    Ok(match before {
        Some(clean) if !class.is_spam() => Some(Reason {
            tag: ACCOUNT_RECENT_SPAM.into(),
            weight: 0.0,
            detail: format!(
                "this sender's mail was called spam recently: {clean} of {CLEAN_TO_CLEAR} clean messages in a row sent since"
            ),
        }),
        _ => None,
    })
}

/// An admin's clear: the sender's next message leaves by its own verdict. True when it was
/// under reputation.
pub async fn clear(store: &dyn SignalStore, subject: &Subject) -> Result<bool, CounterError> {
    store.clear_reputation(&key(subject)).await
}
