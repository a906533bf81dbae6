//! Accepted domains. A domain belongs to exactly one tenant (primary key on the name), so one
//! tenant can never claim — and so never send as — another tenant's domain. Names are stored
//! lowercased. A domain that still has accounts cannot be removed (`Conflict`).
//!
//! A domain is `verified` (usable as a sender) or `pending` with the token its tenant must
//! publish in DNS (SPEC §9). Who may add which domain, and when a pending one becomes verified,
//! is decided above the store (`ops::domains`); the store keeps the records and answers the
//! lookups those rules need. Conflict messages never name the owning tenant.
//!
//! `verified_tenant_of_domain` runs twice per message (envelope and `From:` domains), so its
//! answers are cached per process (issue 18: two PostgreSQL round trips per message, from every
//! node, were most of the database's transactions in cluster mode). A change made through this
//! handle clears the cache at once; one made on another node is seen within
//! [`DOMAIN_CACHE_MAX_AGE`], like the connector snapshot.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use outguard_types::model::{Domain, DomainStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{StoreError, unique_as_conflict};
use crate::{Store, names};

/// `SELECT <every column> FROM domains <rest>` as one static statement.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT domain, tenant, dkim_selector, verified, verification_token FROM domains ",
            $rest
        )
    };
}

fn domain_row(row: &AnyRow) -> Result<Domain, StoreError> {
    let verified: i64 = row.try_get("verified")?;
    Ok(Domain {
        domain: row.try_get("domain")?,
        tenant: row.try_get("tenant")?,
        dkim_selector: row.try_get("dkim_selector")?,
        status: if verified != 0 {
            DomainStatus::Verified
        } else {
            DomainStatus::Pending
        },
        verification_token: row.try_get("verification_token")?,
    })
}

fn normal(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `domain` lowercased without a trailing dot, or `Invalid` when it is not a domain name.
pub fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    names::domain(domain)
}

/// How long a cached answer of `verified_tenant_of_domain` is believed.
pub(crate) const DOMAIN_CACHE_MAX_AGE: Duration = Duration::from_secs(1);
/// Bound on the cached domains (the map is emptied when full: a miss costs one indexed read).
const DOMAIN_CACHE_MAX: usize = 20_000;

/// Verified-domain owners (or their absence), each with the time it was read.
pub(crate) struct DomainCache {
    map: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

impl DomainCache {
    pub(crate) fn new() -> Self {
        DomainCache {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, domain: &str, now: Instant) -> Option<Option<String>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(domain)
            .filter(|(at, _)| now.duration_since(*at) < DOMAIN_CACHE_MAX_AGE)
            .map(|(_, tenant)| tenant.clone())
    }

    fn put(&self, domain: String, tenant: Option<String>, at: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= DOMAIN_CACHE_MAX {
            map.clear();
        }
        map.insert(domain, (at, tenant));
    }

    pub(crate) fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Store {
    /// Accepts `domain` for `tenant`, verified at once (an operator's or the CLI's domain).
    pub async fn add_domain(&self, tenant: &str, domain: &str) -> Result<Domain, StoreError> {
        self.insert_domain(tenant, domain, None).await
    }

    /// Records a tenant admin's claim on `domain`: pending until `token` is found in DNS.
    pub async fn add_pending_domain(
        &self,
        tenant: &str,
        domain: &str,
        token: &str,
    ) -> Result<Domain, StoreError> {
        self.insert_domain(tenant, domain, Some(token)).await
    }

    async fn insert_domain(
        &self,
        tenant: &str,
        domain: &str,
        token: Option<&str>,
    ) -> Result<Domain, StoreError> {
        let domain = names::domain(domain)?;
        self.require_tenant(tenant).await?;
        let taken = || StoreError::conflict(format!("domain {domain} is not available"));
        if self.tenant_of_domain(&domain).await?.is_some() {
            return Err(taken());
        }
        sqlx::query(
            "INSERT INTO domains (domain, tenant, verified, verification_token) VALUES ($1, $2, $3, $4)",
        )
        .bind(&domain)
        .bind(tenant)
        .bind(i64::from(token.is_none()))
        .bind(token)
        .execute(self.w())
        .await
        .map_err(|e| unique_as_conflict(e, format!("domain {domain} is not available")))?;
        self.inner.domains.clear();
        Ok(Domain {
            domain,
            tenant: tenant.to_string(),
            dkim_selector: None,
            status: if token.is_none() {
                DomainStatus::Verified
            } else {
                DomainStatus::Pending
            },
            verification_token: token.map(str::to_string),
        })
    }

    /// Marks `domain` verified (its token is no longer needed).
    pub async fn mark_domain_verified(&self, domain: &str) -> Result<(), StoreError> {
        let domain = normal(domain);
        let done = sqlx::query(
            "UPDATE domains SET verified = 1, verification_token = NULL WHERE domain = $1",
        )
        .bind(&domain)
        .execute(self.w())
        .await?;
        self.inner.domains.clear();
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("domain {domain}")));
        }
        Ok(())
    }

    /// Every pending domain (the periodic verification's work list).
    pub async fn list_pending_domains(&self) -> Result<Vec<Domain>, StoreError> {
        let rows = sqlx::query(select!("WHERE verified = 0 ORDER BY domain"))
            .fetch_all(self.r())
            .await?;
        rows.iter().map(domain_row).collect()
    }

    /// Domains that are a parent or a subdomain of `domain` (not `domain` itself), any tenant,
    /// any status: what the subdomain rule of SPEC §9 looks at.
    pub async fn related_domains(&self, domain: &str) -> Result<Vec<Domain>, StoreError> {
        let domain = normal(domain);
        let mut found = Vec::new();
        let mut rest = domain.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(d) = self.domain(parent).await? {
                found.push(d);
            }
            rest = parent;
        }
        // `_` is a LIKE wildcard and legal in names: the suffix test below is the real filter.
        let rows = sqlx::query(select!("WHERE domain LIKE $1"))
            .bind(format!("%.{domain}"))
            .fetch_all(self.r())
            .await?;
        let suffix = format!(".{domain}");
        for row in &rows {
            let d = domain_row(row)?;
            if d.domain.ends_with(&suffix) {
                found.push(d);
            }
        }
        Ok(found)
    }

    pub async fn list_domains(&self, tenant: Option<&str>) -> Result<Vec<Domain>, StoreError> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(select!("WHERE tenant = $1 ORDER BY domain"))
                    .bind(t)
                    .fetch_all(self.r())
                    .await?
            }
            None => {
                sqlx::query(select!("ORDER BY tenant, domain"))
                    .fetch_all(self.r())
                    .await?
            }
        };
        rows.iter().map(domain_row).collect()
    }

    pub async fn domain(&self, domain: &str) -> Result<Option<Domain>, StoreError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let row = sqlx::query(select!("WHERE domain = $1"))
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
        self.inner.domains.clear();
        Ok(())
    }

    /// The tenant whose *verified* domain `domain` is (case-insensitive, trailing dot ignored):
    /// the only ownership that lets mail be sent as the domain (SPEC §9).
    pub async fn verified_tenant_of_domain(
        &self,
        domain: &str,
    ) -> Result<Option<String>, StoreError> {
        let domain = normal(domain);
        let now = Instant::now();
        if let Some(hit) = self.inner.domains.get(&domain, now) {
            return Ok(hit);
        }
        let row: Option<(String,)> =
            sqlx::query_as("SELECT tenant FROM domains WHERE domain = $1 AND verified <> 0")
                .bind(&domain)
                .fetch_optional(self.r())
                .await?;
        let tenant = row.map(|r| r.0);
        self.inner.domains.put(domain, tenant.clone(), now);
        Ok(tenant)
    }

    /// The tenant that accepted `domain`, verified or pending, if any (case-insensitive,
    /// trailing dot ignored).
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
