//! Alert records (SPEC §3): every alert is kept (whether or not its notification went out under
//! the daily cap), listed newest first, and acknowledged by an admin. `alerts_today` lets a
//! restarted node seed its per-tenant daily caps. `insert_alert_once` is the single decider for
//! alerts several nodes may raise for the same cause (a dedup key with a unique index).

use outguard_policy::restriction::utc_day_start;
use outguard_policy::{Alert, AlertKind};
use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::{StoreError, bad_column};

const DAY_MS: Millis = 24 * 3600 * 1000;
/// Upper bound of one `list_alerts` page.
pub const MAX_ALERTS_LIMIT: u32 = 10_000;

/// An alert with its store id and whether an admin acknowledged it. Serialises flat:
/// `{"id", "kind", "severity", "tenant", "subject", "summary", "measures", "created_at",
/// "acknowledged"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub id: String,
    #[serde(flatten)]
    pub alert: Alert,
    pub acknowledged: bool,
}

type AlertTuple = (String, String, i64);

fn from_row((id, data, ack): AlertTuple) -> Result<StoredAlert, StoreError> {
    let alert = serde_json::from_str(&data).map_err(|_| bad_column("alerts.data", &data))?;
    Ok(StoredAlert {
        id,
        alert,
        acknowledged: ack != 0,
    })
}

impl Store {
    /// Records an alert and returns its id.
    pub async fn insert_alert(&self, alert: &Alert) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let data = serde_json::to_string(alert)
            .map_err(|e| StoreError::invalid(format!("cannot encode alert: {e}")))?;
        sqlx::query(
            "INSERT INTO alerts (id, tenant, kind, created_at, acknowledged, data) \
             VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(&id)
        .bind(alert.tenant.as_deref())
        .bind(alert.kind.as_str())
        .bind(alert.created_at)
        .bind(data)
        .execute(self.w())
        .await?;
        Ok(id)
    }

    /// Records `alert` under `dedup_key` unless an alert with that key exists: returns the new
    /// id, or `None` when another node (or an earlier round) recorded it first. The unique index
    /// on the key decides, so of any number of concurrent callers on any number of nodes exactly
    /// one stores it — the one that then notifies.
    pub async fn insert_alert_once(
        &self,
        alert: &Alert,
        dedup_key: &str,
    ) -> Result<Option<String>, StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let data = serde_json::to_string(alert)
            .map_err(|e| StoreError::invalid(format!("cannot encode alert: {e}")))?;
        let done = sqlx::query(
            "INSERT INTO alerts (id, tenant, kind, created_at, acknowledged, data, dedup_key) \
             VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(&id)
        .bind(alert.tenant.as_deref())
        .bind(alert.kind.as_str())
        .bind(alert.created_at)
        .bind(data)
        .bind(dedup_key)
        .execute(self.w())
        .await?;
        Ok((done.rows_affected() == 1).then_some(id))
    }

    /// Alerts newest first: of one tenant (`None`: every tenant and the service-wide ones) and
    /// optionally one kind; at most `limit` (1–10,000).
    pub async fn list_alerts(
        &self,
        tenant: Option<&str>,
        kind: Option<AlertKind>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let mut sql = String::from("SELECT id, data, acknowledged FROM alerts WHERE 1 = 1");
        let mut n = 0;
        if tenant.is_some() {
            n += 1;
            sql.push_str(&format!(" AND tenant = ${n}"));
        }
        if kind.is_some() {
            n += 1;
            sql.push_str(&format!(" AND kind = ${n}"));
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${n}"));
        let mut q = sqlx::query_as::<_, AlertTuple>(sqlx::AssertSqlSafe(sql));
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        if let Some(k) = kind {
            q = q.bind(k.as_str());
        }
        q = q.bind(i64::from(limit.clamp(1, MAX_ALERTS_LIMIT)));
        let rows = q.fetch_all(self.r()).await?;
        rows.into_iter().map(from_row).collect()
    }

    pub async fn alert(&self, id: &str) -> Result<Option<StoredAlert>, StoreError> {
        let row: Option<AlertTuple> =
            sqlx::query_as("SELECT id, data, acknowledged FROM alerts WHERE id = $1")
                .bind(id)
                .fetch_optional(self.r())
                .await?;
        row.map(from_row).transpose()
    }

    /// Marks an alert acknowledged (`NotFound` when there is no such alert).
    pub async fn ack_alert(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE alerts SET acknowledged = 1 WHERE id = $1")
            .bind(id)
            .execute(self.w())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("alert {id}")));
        }
        Ok(())
    }

    /// Alerts of `kind` recorded for `tenant` (`None`: service-wide) during the UTC day holding
    /// `now` — to seed the daily notification caps after a restart.
    pub async fn alerts_today(
        &self,
        tenant: Option<&str>,
        kind: AlertKind,
        now: Millis,
    ) -> Result<u32, StoreError> {
        let day = utc_day_start(now);
        let (n,): (i64,) = match tenant {
            Some(t) => {
                sqlx::query_as(
                    "SELECT COUNT(*) FROM alerts WHERE tenant = $1 AND kind = $2 \
                     AND created_at >= $3 AND created_at < $4",
                )
                .bind(t)
                .bind(kind.as_str())
                .bind(day)
                .bind(day + DAY_MS)
                .fetch_one(self.r())
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT COUNT(*) FROM alerts WHERE tenant IS NULL AND kind = $1 \
                     AND created_at >= $2 AND created_at < $3",
                )
                .bind(kind.as_str())
                .bind(day)
                .bind(day + DAY_MS)
                .fetch_one(self.r())
                .await?
            }
        };
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
