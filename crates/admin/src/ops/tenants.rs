//! Tenant management: only an operator creates or removes a tenant (a tenant role names only its
//! own, and even that it may not remove). The store refuses to remove a tenant that still has
//! domains, accounts or connectors.

use outguard_store::Store;
use outguard_types::model::{Millis, Tenant};

use super::{Actor, OpsError};

/// Create a tenant.
pub async fn add(
    store: &Store,
    actor: &Actor,
    name: &str,
    now: Millis,
) -> Result<Tenant, OpsError> {
    actor.require_operator()?;
    let t = store.add_tenant(name, now).await?;
    actor.audit(store, "tenant.add", &t.name, "").await?;
    Ok(t)
}

/// The tenant `name`, if the actor may see it (another tenant's reads as missing).
pub async fn find(store: &Store, actor: &Actor, name: &str) -> Result<Tenant, OpsError> {
    match store.tenant(name).await? {
        Some(t) if actor.sees(&t.name) => Ok(t),
        _ => Err(OpsError::NotFound(format!("tenant {name} not found"))),
    }
}

/// Remove an empty tenant.
pub async fn remove(store: &Store, actor: &Actor, name: &str) -> Result<(), OpsError> {
    if !actor.sees(name) {
        return Err(OpsError::NotFound(format!("tenant {name} not found")));
    }
    actor.require_operator()?;
    store.remove_tenant(name).await?;
    actor.audit(store, "tenant.remove", name, "").await
}
