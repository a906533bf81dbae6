//! Clearing a sender's reputation (issue 19): after a message of an account or connector was
//! called spam, its mail leaves from `high-risk` (`ACCOUNT_RECENT_SPAM`) until it has sent
//! enough clean mail in a row; an admin who has dealt with the cause clears that at once.
//!
//! Authority (SPEC §9): an operator clears any sender; a tenant admin only its own tenant's
//! accounts and connectors (another tenant's read as not found); readers nothing. Audited as
//! `reputation.clear` with the reason. The state is in the counter store (memory or Redis), so
//! the caller passes the one the relay uses.

use outguard_policy::{SignalStore, Subject};
use outguard_relay::enforce::lift::parse_subject;
use outguard_store::Store;

use super::{Actor, OpsError};

/// What a clear did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cleared {
    /// The sender (account address or connector CIDR).
    pub subject: String,
    /// It was under reputation (false: there was nothing to clear; still audited).
    pub was_recent_spam: bool,
}

/// The tenant that owns the account or connector, if it exists.
async fn owner(store: &Store, subject: &Subject) -> Result<Option<String>, OpsError> {
    Ok(match subject {
        Subject::Account(a) => store.account(a).await?.map(|a| a.tenant),
        Subject::Connector(c) => store
            .list_connectors(None)
            .await?
            .into_iter()
            .find(|k| k.cidr.to_string() == *c)
            .map(|k| k.tenant),
        Subject::Tenant(_) => None,
    })
}

/// Clear the reputation of `address` (account address or connector CIDR).
pub async fn clear(
    store: &Store,
    signals: &dyn SignalStore,
    actor: &Actor,
    address: &str,
    reason: &str,
) -> Result<Cleared, OpsError> {
    let reason = reason.trim();
    outguard_types::text::check_no_control("reason", reason).map_err(OpsError::Invalid)?;
    outguard_types::text::check_no_control("address", address).map_err(OpsError::Invalid)?;
    let subject = parse_subject(address);
    if matches!(subject, Subject::Tenant(_)) {
        return Err(OpsError::Invalid(format!(
            "{address}: reputation is kept per account (address) or connector (CIDR)"
        )));
    }
    let tenant = owner(store, &subject)
        .await?
        .filter(|t| actor.sees(t))
        .ok_or_else(|| OpsError::NotFound(format!("no account or connector {address} found")))?;
    actor.require_write()?;
    actor.require_tenant(&tenant)?;
    if reason.is_empty() {
        return Err(OpsError::Invalid(
            "reason: clearing a reputation needs a reason".into(),
        ));
    }
    let was = outguard_policy::signals::reputation::clear(signals, &subject)
        .await
        .map_err(|e| OpsError::Unavailable(e.to_string()))?;
    let detail = format!("was_recent_spam={was}; {reason}");
    actor
        .audit(store, "reputation.clear", subject.id(), &detail)
        .await?;
    Ok(Cleared {
        subject: subject.id().to_string(),
        was_recent_spam: was,
    })
}
