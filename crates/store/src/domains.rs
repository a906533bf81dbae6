//! Accepted domains. A domain belongs to exactly one tenant (primary key on the name), so one
//! tenant can never claim — and so never send as — another tenant's domain. Names are stored
//! lowercased. A domain that still has accounts cannot be removed (`Conflict`).

use outguard_types::model::Domain;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{StoreError, unique_as_conflict};
use crate::{Store, names};

fn domain_row(row: &AnyRow) -> Result<Domain, StoreError> {
    Ok(Domain {
        domain: row.try_get("domain")?,
        tenant: row.try_get("tenant")?,
        dkim_selector: row.try_get("dkim_selector")?,
    })
}

impl Store {
    pub async fn add_domain(&self, tenant: &str, domain: &str) -> Result<Domain, StoreError> {
        let domain = names::domain(domain)?;
        self.require_tenant(tenant).await?;
        if let Some(owner) = self.tenant_of_domain(&domain).await? {
            return Err(StoreError::conflict(format!(
                "domain {domain} already belongs to tenant {owner}"
            )));
        }
        sqlx::query("INSERT INTO domains (domain, tenant) VALUES ($1, $2)")
            .bind(&domain)
            .bind(tenant)
            .execute(self.w())
            .await
            .map_err(|e| unique_as_conflict(e, format!("domain {domain} already exists")))?;
        Ok(Domain {
            domain,
            tenant: tenant.to_string(),
            dkim_selector: None,
        })
    }

    pub async fn list_domains(&self, tenant: Option<&str>) -> Result<Vec<Domain>, StoreError> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(
                    "SELECT domain, tenant, dkim_selector FROM domains WHERE tenant = $1 ORDER BY domain",
                )
                .bind(t)
                .fetch_all(self.r())
                .await?
            }
            None => {
                sqlx::query("SELECT domain, tenant, dkim_selector FROM domains ORDER BY tenant, domain")
                    .fetch_all(self.r())
                    .await?
            }
        };
        rows.iter().map(domain_row).collect()
    }

    pub async fn domain(&self, domain: &str) -> Result<Option<Domain>, StoreError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let row =
            sqlx::query("SELECT domain, tenant, dkim_selector FROM domains WHERE domain = $1")
                .bind(&domain)
                .fetch_optional(self.r())
                .await?;
        row.as_ref().map(domain_row).transpose()
    }

    /// Removes an accepted domain that no account uses any more.
    pub async fn remove_domain(&self, domain: &str) -> Result<(), StoreError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut tx = self.w().begin().await?;
        let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE domain = $1")
            .bind(&domain)
            .fetch_one(&mut *tx)
            .await?;
        if accounts > 0 {
            return Err(StoreError::conflict(format!(
                "domain {domain} still has {accounts} account(s); remove them first"
            )));
        }
        let done = sqlx::query("DELETE FROM domains WHERE domain = $1")
            .bind(&domain)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("domain {domain}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant that accepted `domain`, if any (case-insensitive, trailing dot ignored).
    pub async fn tenant_of_domain(&self, domain: &str) -> Result<Option<String>, StoreError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let row: Option<(String,)> = sqlx::query_as("SELECT tenant FROM domains WHERE domain = $1")
            .bind(&domain)
            .fetch_optional(self.r())
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Configures DKIM signing for `domain`: selector and PKCS#8 PEM private key.
    pub async fn set_dkim(
        &self,
        domain: &str,
        selector: &str,
        pem: &str,
    ) -> Result<(), StoreError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if selector.is_empty()
            || !selector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(StoreError::invalid(format!("DKIM selector {selector:?}")));
        }
        if !pem.contains("-----BEGIN") {
            return Err(StoreError::invalid("DKIM key must be a PEM private key"));
        }
        let done =
            sqlx::query("UPDATE domains SET dkim_selector = $1, dkim_pem = $2 WHERE domain = $3")
                .bind(selector)
                .bind(pem)
                .bind(&domain)
                .execute(self.w())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("domain {domain}")));
        }
        Ok(())
    }

    /// `(selector, pem)` when the domain has a DKIM key.
    pub async fn dkim_key(&self, domain: &str) -> Result<Option<(String, String)>, StoreError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT dkim_selector, dkim_pem FROM domains WHERE domain = $1")
                .bind(&domain)
                .fetch_optional(self.r())
                .await?;
        Ok(match row {
            Some((Some(sel), Some(pem))) => Some((sel, pem)),
            _ => None,
        })
    }
}
