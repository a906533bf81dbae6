//! Tenants. Removal is refused (`Conflict`) while the tenant still owns domains, accounts or
//! connectors — deleting a customer's mail setup is never a side effect of one command; remove
//! those first. The tenant's API tokens go with it (a token for a gone tenant must not come back
//! to life if the name is reused). Messages and audit entries keep the name as plain text.

use outguard_types::model::{Millis, Tenant};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{StoreError, unique_as_conflict};
use crate::{Store, names};

fn tenant_row(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn add_tenant(&self, name: &str, now: Millis) -> Result<Tenant, StoreError> {
        let name = names::tenant(name)?;
        sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2)")
            .bind(name)
            .bind(now)
            .execute(self.w())
            .await
            .map_err(|e| unique_as_conflict(e, format!("tenant {name} already exists")))?;
        Ok(Tenant {
            name: name.to_string(),
            created_at: now,
        })
    }

    pub async fn tenant(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT name, created_at FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(self.r())
            .await?;
        row.as_ref().map(tenant_row).transpose()
    }

    /// Like [`Store::tenant`], but a missing tenant is `NotFound`.
    pub(crate) async fn require_tenant(&self, name: &str) -> Result<(), StoreError> {
        match self.tenant(name).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::not_found(format!("tenant {name}"))),
        }
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT name, created_at FROM tenants ORDER BY name")
            .fetch_all(self.r())
            .await?;
        rows.iter().map(tenant_row).collect()
    }

    /// Removes an empty tenant (see the module doc for what "empty" means).
    pub async fn remove_tenant(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.w().begin().await?;
        let uses: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM domains WHERE tenant = $1), \
                    (SELECT COUNT(*) FROM accounts WHERE tenant = $1), \
                    (SELECT COUNT(*) FROM connectors WHERE tenant = $1)",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if uses != (0, 0, 0) {
            return Err(StoreError::conflict(format!(
                "tenant {name} still has {} domain(s), {} account(s), {} connector(s); remove them first",
                uses.0, uses.1, uses.2
            )));
        }
        sqlx::query("DELETE FROM api_tokens WHERE tenant = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Its suppressed recipients too (they are its own bounce data).
        sqlx::query("DELETE FROM suppressions WHERE tenant = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Its bulk streams' compliance records (issue 25 part 4).
        sqlx::query("DELETE FROM bulk_streams WHERE tenant = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Its webhook subscriptions go with it (a reused name starts without them).
        let hooks = sqlx::query("DELETE FROM webhooks WHERE tenant = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if hooks.rows_affected() > 0 {
            crate::policies::bump(&mut tx, crate::webhooks::WEBHOOKS_VERSION).await?;
        }
        let done = sqlx::query("DELETE FROM tenants WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("tenant {name}")));
        }
        tx.commit().await?;
        self.inner.domains.clear();
        Ok(())
    }
}
