//! Webhook subscriptions made through the API (SPEC §3/§5), delivered beside the config's
//! `[[webhooks]]`. A subscription belongs to one tenant (its alerts only) or to none (every
//! alert, operators only). The secret is stored to sign deliveries; callers decide who sees it
//! (the API shows it once, at creation). Kinds are kept as a JSON array of alert kind names
//! (empty: every kind); the caller validates them.
//!
//! Every insert and delete bumps `webhooks_version` in the same transaction: a node keeps the
//! list cached and reloads it when that one row moves.

use outguard_types::model::Millis;

use crate::Store;
use crate::error::{StoreError, bad_column};
use crate::policies::bump;

pub(crate) const WEBHOOKS_VERSION: &str = "webhooks_version";

/// One stored subscription, secret included (never serialise this to a client as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub id: String,
    /// `None`: every tenant's alerts and the service-wide ones.
    pub tenant: Option<String>,
    pub url: String,
    pub secret: String,
    /// Alert kind names; empty means every kind.
    pub kinds: Vec<String>,
    pub created_at: Millis,
    /// The audit actor that created it (`token:<id>`, `cli`, …).
    pub created_by: String,
}

type WebhookTuple = (String, Option<String>, String, String, String, i64, String);

fn from_row(row: WebhookTuple) -> Result<StoredWebhook, StoreError> {
    let (id, tenant, url, secret, kinds, created_at, created_by) = row;
    let kinds = serde_json::from_str::<Vec<String>>(&kinds)
        .map_err(|_| bad_column("webhooks.kinds", &kinds))?;
    Ok(StoredWebhook {
        id,
        tenant,
        url,
        secret,
        kinds,
        created_at,
        created_by,
    })
}

impl Store {
    /// A counter that moves on every webhook change. One indexed row: cheap to poll.
    pub async fn webhooks_version(&self) -> Result<i64, StoreError> {
        self.version(WEBHOOKS_VERSION).await
    }

    /// Stores a subscription and returns it with its new id. An unknown tenant is `NotFound`.
    pub async fn create_webhook(
        &self,
        tenant: Option<&str>,
        url: &str,
        secret: &str,
        kinds: &[String],
        created_by: &str,
        now: Millis,
    ) -> Result<StoredWebhook, StoreError> {
        if let Some(t) = tenant {
            self.require_tenant(t).await?;
        }
        let hook = StoredWebhook {
            id: uuid::Uuid::now_v7().simple().to_string(),
            tenant: tenant.map(str::to_string),
            url: url.to_string(),
            secret: secret.to_string(),
            kinds: kinds.to_vec(),
            created_at: now,
            created_by: created_by.to_string(),
        };
        let kinds_json = serde_json::to_string(&hook.kinds)
            .map_err(|e| StoreError::invalid(format!("cannot encode kinds: {e}")))?;
        let mut tx = self.w().begin().await?;
        bump(&mut tx, WEBHOOKS_VERSION).await?;
        sqlx::query(
            "INSERT INTO webhooks (id, tenant, url, secret, kinds, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&hook.id)
        .bind(hook.tenant.as_deref())
        .bind(&hook.url)
        .bind(&hook.secret)
        .bind(kinds_json)
        .bind(hook.created_at)
        .bind(&hook.created_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(hook)
    }

    /// Subscriptions oldest first: of one tenant (`Some`), or every one, tenant-less included
    /// (`None`).
    pub async fn list_webhooks(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<StoredWebhook>, StoreError> {
        let rows: Vec<WebhookTuple> =
            match tenant {
                Some(t) => sqlx::query_as(
                    "SELECT id, tenant, url, secret, kinds, created_at, created_by FROM webhooks \
                     WHERE tenant = $1 ORDER BY created_at, id",
                )
                .bind(t)
                .fetch_all(self.r())
                .await?,
                None => sqlx::query_as(
                    "SELECT id, tenant, url, secret, kinds, created_at, created_by FROM webhooks \
                     ORDER BY created_at, id",
                )
                .fetch_all(self.r())
                .await?,
            };
        rows.into_iter().map(from_row).collect()
    }

    pub async fn webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        let row: Option<WebhookTuple> = sqlx::query_as(
            "SELECT id, tenant, url, secret, kinds, created_at, created_by FROM webhooks \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.r())
        .await?;
        row.map(from_row).transpose()
    }

    /// Deletes a subscription (`NotFound` when there is no such id).
    pub async fn delete_webhook(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.w().begin().await?;
        bump(&mut tx, WEBHOOKS_VERSION).await?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("webhook {id}")));
        }
        tx.commit().await?;
        Ok(())
    }
}
