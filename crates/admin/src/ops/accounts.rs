//! Account management (SMTP AUTH users): a tenant admin manages its own tenant's accounts; the
//! store checks the address lies in one of the tenant's domains and that a send-as target is the
//! tenant's too. A password not given is generated and returned once; only its hash is stored.

use outguard_store::Store;
use outguard_types::model::{Account, Millis};

use super::{Actor, OpsError};

/// Create an account; `password: None` generates one, returned beside the account.
pub async fn add(
    store: &Store,
    actor: &Actor,
    tenant: &str,
    address: &str,
    password: Option<&str>,
    now: Millis,
) -> Result<(Account, Option<String>), OpsError> {
    actor.require_write()?;
    actor.require_tenant(tenant)?;
    let generated = password.is_none().then(outguard_store::generate_password);
    let pw = password.or(generated.as_deref());
    let a = store.add_account(tenant, address, pw, now).await?;
    actor
        .audit(
            store,
            "account.add",
            &a.address,
            &format!("tenant {tenant}"),
        )
        .await?;
    Ok((a, generated))
}

/// The account `address`, if the actor may see it (another tenant's reads as missing).
pub async fn find(store: &Store, actor: &Actor, address: &str) -> Result<Account, OpsError> {
    match store.account(address).await? {
        Some(a) if actor.sees(&a.tenant) => Ok(a),
        _ => Err(OpsError::NotFound(format!("account {address} not found"))),
    }
}

/// Remove an account.
pub async fn remove(store: &Store, actor: &Actor, address: &str) -> Result<Account, OpsError> {
    let a = find(store, actor, address).await?;
    actor.require_write()?;
    store.remove_account(&a.address).await?;
    actor.audit(store, "account.remove", &a.address, "").await?;
    Ok(a)
}

/// Replace an account's password with a generated one, returned once.
pub async fn reset_password(
    store: &Store,
    actor: &Actor,
    address: &str,
) -> Result<String, OpsError> {
    let a = find(store, actor, address).await?;
    actor.require_write()?;
    let password = outguard_store::generate_password();
    store.set_password(&a.address, &password).await?;
    actor
        .audit(store, "account.password", &a.address, "reset")
        .await?;
    Ok(password)
}

/// Let `address` send as `target` (`user@domain` or `@domain` of the same tenant).
pub async fn send_as_add(
    store: &Store,
    actor: &Actor,
    address: &str,
    target: &str,
) -> Result<(), OpsError> {
    let a = find(store, actor, address).await?;
    actor.require_write()?;
    store.send_as_add(&a.address, target).await?;
    actor
        .audit(store, "account.send_as.add", &a.address, target)
        .await
}

/// Withdraw a send-as grant.
pub async fn send_as_remove(
    store: &Store,
    actor: &Actor,
    address: &str,
    target: &str,
) -> Result<(), OpsError> {
    let a = find(store, actor, address).await?;
    actor.require_write()?;
    store.send_as_remove(&a.address, target).await?;
    actor
        .audit(store, "account.send_as.remove", &a.address, target)
        .await
}
