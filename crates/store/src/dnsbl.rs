//! DNSBL monitor records (SPEC §4): the history of every check of one pool IP on one zone, and
//! the latest answer per (IP, zone) that `outguard dnsbl check`, the API and the UI show.
//! `status` is one of `listed`, `clean`, `error` (the zone answered one of its error codes) or
//! `unknown` (SERVFAIL, timeout); the monitor decides, the store only keeps.

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::StoreError;

/// Upper bound of one history page.
pub const MAX_DNSBL_HISTORY: u32 = 10_000;

/// One check of one IP on one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsblCheck {
    pub ip: String,
    pub zone: String,
    pub checked_at: Millis,
    pub status: String,
    /// The A answer (e.g. `127.0.0.2`) when there was one.
    pub code: Option<String>,
    /// The zone's TXT reason for a listing, or what went wrong for `error` / `unknown`.
    pub reason: Option<String>,
}

type Row = (String, String, i64, String, Option<String>, Option<String>);

fn from_row((ip, zone, checked_at, status, code, reason): Row) -> DnsblCheck {
    DnsblCheck {
        ip,
        zone,
        checked_at,
        status,
        code,
        reason,
    }
}

impl Store {
    /// Appends `check` to the history and makes it the latest answer for its IP and zone.
    pub async fn record_dnsbl_check(&self, check: &DnsblCheck) -> Result<(), StoreError> {
        let mut tx = self.w().begin().await?;
        for table in ["dnsbl_checks", "dnsbl_state"] {
            let upsert = if table == "dnsbl_state" {
                " ON CONFLICT (ip, zone) DO UPDATE SET checked_at = excluded.checked_at, \
                 status = excluded.status, code = excluded.code, reason = excluded.reason"
            } else {
                ""
            };
            let sql = format!(
                "INSERT INTO {table} (ip, zone, checked_at, status, code, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6){upsert}"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&check.ip)
                .bind(&check.zone)
                .bind(check.checked_at)
                .bind(&check.status)
                .bind(check.code.as_deref())
                .bind(check.reason.as_deref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The latest answer of every (IP, zone) ever checked, by IP then zone.
    pub async fn dnsbl_state(&self) -> Result<Vec<DnsblCheck>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT ip, zone, checked_at, status, code, reason FROM dnsbl_state ORDER BY ip, zone",
        )
        .fetch_all(self.r())
        .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Checks newest first, of one IP (`None`: all), at most `limit` (1–10,000).
    pub async fn dnsbl_history(
        &self,
        ip: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DnsblCheck>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_DNSBL_HISTORY));
        let cols = "SELECT ip, zone, checked_at, status, code, reason FROM dnsbl_checks";
        let rows: Vec<Row> = match ip {
            Some(ip) => {
                let sql = format!("{cols} WHERE ip = $1 ORDER BY checked_at DESC LIMIT $2");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(ip)
                    .bind(limit)
                    .fetch_all(self.r())
                    .await?
            }
            None => {
                let sql = format!("{cols} ORDER BY checked_at DESC LIMIT $1");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(self.r())
                    .await?
            }
        };
        Ok(rows.into_iter().map(from_row).collect())
    }
}
