//! Alert acknowledgement: a tenant role acknowledges its own tenant's alerts; service-wide ones
//! (`ip_listed`, no tenant) are the operator's.

use outguard_store::Store;

use super::{Actor, OpsError};

/// Acknowledge one alert.
pub async fn ack(store: &Store, actor: &Actor, id: &str) -> Result<(), OpsError> {
    let missing = || OpsError::NotFound(format!("alert {id} not found"));
    let a = store.alert(id).await?.ok_or_else(missing)?;
    if !actor.sees_opt(a.alert.tenant.as_deref()) {
        return Err(missing());
    }
    actor.require_write()?;
    store.ack_alert(id).await?;
    actor.audit(store, "alert.ack", id, "").await
}
