//! Feedback reports an operator hands in — `POST /api/v1/fbl` and `outguard fbl import` — are
//! management actions: each report recorded is audited once, here, whichever way it came.
//! Reports that arrive on the `fbl` listener are mail, not actions, and are not audited.

use outguard_store::{FblRecord, Store};

use super::{Actor, OpsError};

/// How an operator handed the report in (the audit action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandedIn {
    /// `POST /api/v1/fbl`: `fbl.post`.
    Posted,
    /// `outguard fbl import`: `fbl.import`.
    Imported,
}

/// Audit one recorded report: its id as the target, its feedback type as the detail.
pub async fn recorded(
    store: &Store,
    actor: &Actor,
    how: HandedIn,
    rec: &FblRecord,
) -> Result<(), OpsError> {
    let action = match how {
        HandedIn::Posted => "fbl.post",
        HandedIn::Imported => "fbl.import",
    };
    actor
        .audit(store, action, &rec.id, &rec.feedback_type)
        .await
}
