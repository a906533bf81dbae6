//! Outbound spam policies per tenant (SPEC §2.4): the tenant's default settings (the row named
//! `default`, priority -1) and its custom policies (scope + settings, unique names and
//! priorities). Scope and settings are stored as JSON so a new policy key needs no migration.
//!
//! Every change bumps the `policies_version` counter in the `meta` table inside the same
//! transaction, so a relay can keep policies cached and reload only when one row says so. The
//! bump is the transaction's first write: on PostgreSQL it takes the row lock that serialises
//! concurrent policy writers, so the validation of a tenant's whole set cannot race.

use outguard_types::policy::{Policy, PolicyScope, PolicySettings, validate_policies};
use sqlx::{Any, Transaction};

use crate::Store;
use crate::error::{StoreError, bad_column};

/// Name of the row holding a tenant's default settings.
pub const DEFAULT_POLICY: &str = "default";
const DEFAULT_PRIORITY: i64 = -1;

pub(crate) const POLICIES_VERSION: &str = "policies_version";
pub(crate) const RESTRICTIONS_VERSION: &str = "restrictions_version";

type PolicyTuple = (String, i64, String, String);

fn policy_from(row: PolicyTuple) -> Result<Policy, StoreError> {
    let (name, priority, scope, settings) = row;
    Ok(Policy {
        priority: u32::try_from(priority)
            .map_err(|_| bad_column("policies.priority", &priority.to_string()))?,
        scope: serde_json::from_str::<PolicyScope>(&scope)
            .map_err(|_| bad_column("policies.scope", &scope))?,
        settings: serde_json::from_str::<PolicySettings>(&settings)
            .map_err(|_| bad_column("policies.settings", &settings))?,
        name,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::invalid(format!("cannot encode: {e}")))
}

/// Bumps a change counter (first write of the transaction: see the module doc).
pub(crate) async fn bump(tx: &mut Transaction<'_, Any>, key: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE meta SET value = value + 1 WHERE key = $1")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    pub(crate) async fn version(&self, key: &str) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(self.r())
            .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// A counter that moves on every policy change (any tenant). One indexed row: cheap to poll.
    pub async fn policies_version(&self) -> Result<i64, StoreError> {
        self.version(POLICIES_VERSION).await
    }

    /// The tenant's custom policies, highest priority (lowest number) first. The default is
    /// not among them (see [`Store::tenant_default`]). An unknown tenant has none.
    pub async fn list_policies(&self, tenant: &str) -> Result<Vec<Policy>, StoreError> {
        let rows: Vec<PolicyTuple> = sqlx::query_as(
            "SELECT name, priority, scope, settings FROM policies \
             WHERE tenant = $1 AND name <> $2 ORDER BY priority",
        )
        .bind(tenant)
        .bind(DEFAULT_POLICY)
        .fetch_all(self.r())
        .await?;
        rows.into_iter().map(policy_from).collect()
    }

    /// One custom policy by name.
    pub async fn policy(&self, tenant: &str, name: &str) -> Result<Option<Policy>, StoreError> {
        if name == DEFAULT_POLICY {
            return Ok(None);
        }
        let row: Option<PolicyTuple> = sqlx::query_as(
            "SELECT name, priority, scope, settings FROM policies WHERE tenant = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(self.r())
        .await?;
        row.map(policy_from).transpose()
    }

    /// Inserts or replaces (by name) a custom policy. The tenant's whole set must stay valid:
    /// a priority another policy holds is `Conflict`; a bad name or setting is `Invalid`
    /// (the message names the key); an unknown tenant is `NotFound`.
    pub async fn put_policy(&self, tenant: &str, policy: &Policy) -> Result<(), StoreError> {
        if policy.name == DEFAULT_POLICY {
            return Err(StoreError::invalid(
                "policy name `default` is the tenant's default policy: set its keys instead",
            ));
        }
        self.require_tenant(tenant).await?;
        let mut tx = self.w().begin().await?;
        bump(&mut tx, POLICIES_VERSION).await?;
        let rows: Vec<PolicyTuple> = sqlx::query_as(
            "SELECT name, priority, scope, settings FROM policies WHERE tenant = $1 AND name <> $2",
        )
        .bind(tenant)
        .bind(DEFAULT_POLICY)
        .fetch_all(&mut *tx)
        .await?;
        let mut set: Vec<Policy> = rows
            .into_iter()
            .map(policy_from)
            .collect::<Result<_, _>>()?;
        set.retain(|p| p.name != policy.name);
        if let Some(other) = set.iter().find(|p| p.priority == policy.priority) {
            return Err(StoreError::conflict(format!(
                "priority {} is already used by policy `{}` of tenant {tenant}",
                policy.priority, other.name
            )));
        }
        set.push(policy.clone());
        validate_policies(&set).map_err(StoreError::invalid)?;
        sqlx::query("DELETE FROM policies WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(&policy.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO policies (tenant, name, priority, scope, settings) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant)
        .bind(&policy.name)
        .bind(i64::from(policy.priority))
        .bind(to_json(&policy.scope)?)
        .bind(to_json(&policy.settings)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a custom policy (`NotFound` when there is none by that name).
    pub async fn remove_policy(&self, tenant: &str, name: &str) -> Result<(), StoreError> {
        if name == DEFAULT_POLICY {
            return Err(StoreError::invalid(
                "the default policy cannot be removed; set its keys to `default` instead",
            ));
        }
        let mut tx = self.w().begin().await?;
        bump(&mut tx, POLICIES_VERSION).await?;
        let done = sqlx::query("DELETE FROM policies WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!(
                "policy {name} of tenant {tenant}"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's default settings; empty (every key unset) when never set.
    pub async fn tenant_default(&self, tenant: &str) -> Result<PolicySettings, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT settings FROM policies WHERE tenant = $1 AND name = $2")
                .bind(tenant)
                .bind(DEFAULT_POLICY)
                .fetch_optional(self.r())
                .await?;
        match row {
            Some((s,)) => serde_json::from_str(&s).map_err(|_| bad_column("policies.settings", &s)),
            None => Ok(PolicySettings::default()),
        }
    }

    /// Replaces the tenant's default settings (validated: `Invalid` names the key).
    pub async fn set_tenant_default(
        &self,
        tenant: &str,
        settings: &PolicySettings,
    ) -> Result<(), StoreError> {
        settings.validate().map_err(StoreError::invalid)?;
        self.require_tenant(tenant).await?;
        let mut tx = self.w().begin().await?;
        bump(&mut tx, POLICIES_VERSION).await?;
        sqlx::query(
            "INSERT INTO policies (tenant, name, priority, scope, settings) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, name) DO UPDATE SET settings = excluded.settings",
        )
        .bind(tenant)
        .bind(DEFAULT_POLICY)
        .bind(DEFAULT_PRIORITY)
        .bind(to_json(&PolicyScope::default())?)
        .bind(to_json(settings)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
