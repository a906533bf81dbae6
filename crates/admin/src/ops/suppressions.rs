//! Suppressed recipients (issue 25): list, add and remove, per tenant. A tenant admin manages
//! its own tenant's list only (another tenant reads like a missing one), a reader only lists,
//! an operator manages every tenant's (SPEC §9). Adds and removals are audited.

use std::time::Duration;

use outguard_store::{Store, Suppression};
use outguard_types::api::NewSuppression;
use outguard_types::model::Millis;

use super::{Actor, OpsError};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The suppressions in force at `now` the actor may see (`tenant`: only that one).
pub async fn list(
    store: &Store,
    actor: &Actor,
    tenant: Option<&str>,
    now: Millis,
    limit: u32,
) -> Result<Vec<Suppression>, OpsError> {
    let scope = match (tenant, actor.tenant.as_deref()) {
        (Some(t), _) => {
            actor.require_tenant(t)?;
            Some(t)
        }
        (None, own) if !actor.is_operator() => Some(own.unwrap_or("")),
        (None, _) => None,
    };
    Ok(store.list_suppressions(scope, now, limit).await?)
}

/// Suppress `req.recipient` for `tenant` (the caller resolved it from `req.tenant`) for
/// `req.days` (1–365), else for `default`.
pub async fn add(
    store: &Store,
    actor: &Actor,
    tenant: &str,
    req: &NewSuppression,
    default: Duration,
    now: Millis,
) -> Result<Suppression, OpsError> {
    let (recipient, days, reason) = (&req.recipient, req.days, req.reason.as_deref());
    actor.require_write()?;
    actor.require_tenant(tenant)?;
    if store.tenant(tenant).await?.is_none() {
        return Err(OpsError::NotFound(format!("tenant {tenant} not found")));
    }
    let reason = reason.unwrap_or("added by an admin");
    if reason.chars().any(char::is_control) || reason.len() > 500 {
        return Err(OpsError::Invalid(
            "reason: control characters or longer than 500 bytes".into(),
        ));
    }
    let span = match days {
        Some(d @ 1..=365) => i64::from(d) * DAY_MS,
        Some(d) => return Err(OpsError::Invalid(format!("days: {d} is outside 1–365"))),
        None => i64::try_from(default.as_millis()).unwrap_or(365 * DAY_MS),
    };
    let s = store
        .suppress(&Suppression {
            tenant: tenant.to_string(),
            recipient: recipient.to_string(),
            until: now.saturating_add(span),
            created_at: now,
            source: "manual".into(),
            reason: reason.to_string(),
            message_id: None,
        })
        .await?;
    let target = format!("{tenant}/{}", s.recipient);
    actor
        .audit(store, "suppression.add", &target, reason)
        .await?;
    Ok(s)
}

/// Lift the suppression of `recipient` for `tenant` (its next RCPT is accepted again).
pub async fn remove(
    store: &Store,
    actor: &Actor,
    tenant: &str,
    recipient: &str,
) -> Result<(), OpsError> {
    actor.require_write()?;
    actor.require_tenant(tenant)?;
    store.unsuppress(tenant, recipient).await?;
    let target = format!("{tenant}/{}", recipient.trim().to_ascii_lowercase());
    actor.audit(store, "suppression.remove", &target, "").await
}
