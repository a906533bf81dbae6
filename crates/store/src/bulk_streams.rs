//! Bulk streams (issue 25 part 4): per tenant and From domain, the latest bulk message's
//! compliance checks and the latest failure as a sample, for the compliance page and
//! `GET /api/v1/compliance`. One row per (tenant, From domain), written by the relay's
//! compliance gate on each bulk message; a passing message keeps the previous failure sample
//! (so the page shows when the stream last failed). The volume (messages a day, recipients per
//! provider) lives in the signal store's hourly buckets, not here.

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::StoreError;

/// One bulk message's outcome, as the gate saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkObservation {
    pub tenant: String,
    pub from_domain: String,
    /// Why it is bulk ("List-Unsubscribe header", "5,200 recipients at Gmail in 24 hours").
    pub why: String,
    pub at: Millis,
    pub message_id: String,
    /// JSON object: check → `pass` / `fail` / `unknown`.
    pub checks: String,
    /// `none`, `warn`, `high-risk` or `reject`.
    pub action: String,
    /// What failed (None: nothing failed).
    pub failure: Option<String>,
}

/// A stored stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkStream {
    pub tenant: String,
    pub from_domain: String,
    pub why: String,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub last_message_id: String,
    pub checks: String,
    pub last_action: String,
    pub failed_at: Option<Millis>,
    pub failed_message_id: Option<String>,
    pub failed_detail: Option<String>,
}

type Row = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "tenant, from_domain, why, first_seen, last_seen, last_message_id, checks, \
                       last_action, failed_at, failed_message_id, failed_detail";

/// Upper bound of one listing.
pub const MAX_BULK_STREAMS: u32 = 10_000;

fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl Store {
    /// Records one bulk message of a stream (creates the stream at its first).
    pub async fn record_bulk(&self, o: &BulkObservation) -> Result<(), StoreError> {
        let domain = o.from_domain.to_ascii_lowercase();
        let failure = o.failure.as_deref().map(|f| clean(f, 1000));
        let sql = format!(
            "INSERT INTO bulk_streams ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (tenant, from_domain) DO UPDATE SET \
             why = excluded.why, last_seen = excluded.last_seen, \
             last_message_id = excluded.last_message_id, checks = excluded.checks, \
             last_action = excluded.last_action, \
             failed_at = COALESCE(excluded.failed_at, bulk_streams.failed_at), \
             failed_message_id = COALESCE(excluded.failed_message_id, bulk_streams.failed_message_id), \
             failed_detail = COALESCE(excluded.failed_detail, bulk_streams.failed_detail)"
        );
        let failed = failure.is_some();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&o.tenant)
            .bind(&domain)
            .bind(clean(&o.why, 200))
            .bind(o.at)
            .bind(clean(&o.message_id, 200))
            .bind(clean(&o.checks, 500))
            .bind(clean(&o.action, 20))
            .bind(failed.then_some(o.at))
            .bind(failed.then(|| clean(&o.message_id, 200)))
            .bind(failure)
            .execute(self.w())
            .await?;
        Ok(())
    }

    /// The streams of one tenant or of all (`None`), by tenant and domain.
    pub async fn list_bulk_streams(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<BulkStream>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM bulk_streams WHERE ($1 IS NULL OR tenant = $1) \
             ORDER BY tenant, from_domain LIMIT $2"
        );
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(i64::from(MAX_BULK_STREAMS))
            .fetch_all(self.r())
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    tenant,
                    from_domain,
                    why,
                    first_seen,
                    last_seen,
                    last_message_id,
                    checks,
                    last_action,
                    failed_at,
                    failed_message_id,
                    failed_detail,
                )| BulkStream {
                    tenant,
                    from_domain,
                    why,
                    first_seen,
                    last_seen,
                    last_message_id,
                    checks,
                    last_action,
                    failed_at,
                    failed_message_id,
                    failed_detail,
                },
            )
            .collect())
    }
}
