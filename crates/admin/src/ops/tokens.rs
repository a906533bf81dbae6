//! Admin API tokens (operators only): the secret is returned once, at creation; only its digest
//! is stored. A revoked token stops working at its next request (the API does not cache).

use outguard_store::Store;
use outguard_types::model::{Millis, Role, TokenInfo};

use super::{Actor, OpsError};

/// Create a token; returns its record and the secret (shown this once).
pub async fn create(
    store: &Store,
    actor: &Actor,
    role: Role,
    tenant: Option<&str>,
    now: Millis,
) -> Result<(TokenInfo, String), OpsError> {
    actor.require_operator()?;
    let (info, secret) = store.create_token(role, tenant, now).await?;
    let detail = format!(
        "role {} tenant {}",
        role.as_str(),
        info.tenant.as_deref().unwrap_or("-")
    );
    actor
        .audit(store, "token.create", &info.id, &detail)
        .await?;
    Ok((info, secret))
}

/// Revoke a token by id.
pub async fn revoke(store: &Store, actor: &Actor, id: &str) -> Result<(), OpsError> {
    actor.require_operator()?;
    store.revoke_token(id).await?;
    actor.audit(store, "token.revoke", id, "").await
}
