//! Which message, account and tenant a report (ARF or DSN) is about (SPEC §4): the original's
//! `X-Outguard-Id` (every message we deliver carries it as its first line; the parsers read the
//! first one only, and submission strips any a client wrote — SPEC §9) names the message; else its
//! `Message-ID` is looked up in the trace (newest message with that header). A report that
//! names neither, or names a message we do not know, stays unattributed.

use outguard_store::{FblAttribution, Store, StoreError};
use outguard_types::model::Submitter;

use super::parse::ParsedReport;

pub async fn attribute(
    store: &Store,
    p: &ParsedReport,
) -> Result<Option<FblAttribution>, StoreError> {
    attribute_keys(
        store,
        p.outguard_id.as_deref(),
        p.original_message_id.as_deref(),
    )
    .await
}

/// The same from the two keys (ARF reports and DSNs alike).
pub async fn attribute_keys(
    store: &Store,
    outguard_id: Option<&str>,
    message_id: Option<&str>,
) -> Result<Option<FblAttribution>, StoreError> {
    let mut msg = None;
    if let Some(id) = outguard_id {
        msg = store.message(id).await?;
    }
    if msg.is_none()
        && let Some(mid) = message_id
        && let Some(id) = store.find_message_by_header_id(mid).await?
    {
        msg = store.message(&id).await?;
    }
    Ok(msg.map(|m| FblAttribution {
        message_id: m.id,
        account: match m.submitter {
            Submitter::Account(a) => Some(a),
            _ => None,
        },
        tenant: m.tenant,
    }))
}
