//! Feedback-loop (ARF, RFC 5965) report records (SPEC §4): every report as received — parsed or
//! flagged malformed, never dropped — with what it was attributed to. The outguard binary parses
//! and attributes; this module only keeps and finds the records.

use outguard_types::model::{EventKind, Millis, TraceEvent};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::{StoreError, bad_column};

/// Upper bound of one `list_fbl_reports` page.
pub const MAX_FBL_LIMIT: u32 = 10_000;

const HOUR: i64 = 3_600_000;
/// Which reports are complaints (the dashboard's counts): not `not-spam` replies, and not the
/// DSN bounces (`delivery-status`) that the fbl listener stores beside them.
/// Untrusted reports (SPEC §9) are kept for operators but are nobody's complaint.
const COMPLAINT: &str = "feedback_type NOT IN ('not-spam', 'delivery-status') AND trusted = 1";

/// The message, account and tenant a report was traced back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FblAttribution {
    pub message_id: String,
    pub account: Option<String>,
    pub tenant: Option<String>,
}

/// One report. Serialises as the API's `GET /api/v1/fbl/{id}` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FblRecord {
    pub id: String,
    pub attributed: Option<FblAttribution>,
    /// `abuse`, `fraud`, `virus`, `not-spam`, `auth-failure`, `other`, or `unknown` when the
    /// report could not be parsed.
    pub feedback_type: String,
    pub source_ip: Option<String>,
    pub received_at: Millis,
    /// Why the report is malformed (None: it parsed as ARF).
    pub malformed: Option<String>,
    /// The parsed ARF fields (user agent, original mail from / rcpt to, arrival date, …).
    pub fields: serde_json::Value,
    /// Whether the report came from a trusted reporter (SPEC §9): only then was it counted
    /// toward rates or learned from. Untrusted reports are kept for operators.
    #[serde(default)]
    pub trusted: bool,
    /// Which trust entry vouched for it: a `trusted_reporters` network, `dkim:<domain>`, or
    /// `operator` (posted through the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_by: Option<String>,
    /// The report as received (lossless for UTF-8; other bytes replaced in this view). Empty —
    /// and left out of the JSON — in lists: the raw report is fetched on its own.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raw: String,
}

type Row = (String, String, i64, Vec<u8>);

fn from_row((id, data, trusted, raw): Row) -> Result<FblRecord, StoreError> {
    let mut rec = meta_from_row((id, data, trusted))?;
    rec.raw = String::from_utf8_lossy(&raw).into_owned();
    Ok(rec)
}

fn meta_from_row((id, data, trusted): (String, String, i64)) -> Result<FblRecord, StoreError> {
    let mut rec: FblRecord =
        serde_json::from_str(&data).map_err(|_| bad_column("fbl_reports.data", &id))?;
    // The column is authoritative (records from before SPEC §9 were all counted).
    rec.trusted = trusted != 0;
    Ok(rec)
}

impl Store {
    /// Stores a report (`rec.raw` is ignored in favour of the exact bytes `raw`).
    pub async fn insert_fbl_report(&self, rec: &FblRecord, raw: &[u8]) -> Result<(), StoreError> {
        let mut data = rec.clone();
        data.raw = String::new();
        let json = serde_json::to_string(&data)
            .map_err(|e| StoreError::invalid(format!("cannot encode report: {e}")))?;
        let att = rec.attributed.as_ref();
        sqlx::query(
            "INSERT INTO fbl_reports (id, received_at, feedback_type, malformed, message_id, account, tenant, data, raw, trusted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&rec.id)
        .bind(rec.received_at)
        .bind(&rec.feedback_type)
        .bind(i64::from(rec.malformed.is_some()))
        .bind(att.map(|a| a.message_id.as_str()))
        .bind(att.and_then(|a| a.account.as_deref()))
        .bind(att.and_then(|a| a.tenant.as_deref()))
        .bind(json)
        .bind(raw.to_vec())
        .bind(i64::from(rec.trusted))
        .execute(self.w())
        .await?;
        Ok(())
    }

    pub async fn fbl_report(&self, id: &str) -> Result<Option<FblRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as("SELECT id, data, trusted, raw FROM fbl_reports WHERE id = $1")
                .bind(id)
                .fetch_optional(self.r())
                .await?;
        row.map(from_row).transpose()
    }

    /// The report's exact bytes as received.
    pub async fn fbl_report_raw(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT raw FROM fbl_reports WHERE id = $1")
            .bind(id)
            .fetch_optional(self.r())
            .await?;
        Ok(row.map(|(raw,)| raw))
    }

    /// Reports newest first, of one tenant (`None`: all), at most `limit` (1–10,000): metadata
    /// only (`raw` empty — see [`Store::fbl_report_raw`]).
    pub async fn list_fbl_reports(
        &self,
        tenant: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FblRecord>, StoreError> {
        self.list_fbl_reports_where(tenant, false, limit).await
    }

    /// [`Store::list_fbl_reports`], of trusted reports only when `trusted_only`.
    pub async fn list_fbl_reports_where(
        &self,
        tenant: Option<&str>,
        trusted_only: bool,
        limit: u32,
    ) -> Result<Vec<FblRecord>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_FBL_LIMIT));
        // Placeholders numbered in the order they appear (SQLite numbers `$N` that way).
        let sql = format!(
            "SELECT id, data, trusted FROM fbl_reports WHERE {}{} \
             ORDER BY received_at DESC, id DESC LIMIT ${}",
            if tenant.is_some() {
                "tenant = $1"
            } else {
                "1 = 1"
            },
            if trusted_only { " AND trusted = 1" } else { "" },
            if tenant.is_some() { 2 } else { 1 },
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql));
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let q = q.bind(limit);
        let rows = q.fetch_all(self.r()).await?;
        rows.into_iter().map(meta_from_row).collect()
    }

    /// Records that a trusted report counted `what` (`complaint` per reporter entry,
    /// `hard_bounce` per recipient) about a message; `false` when it was already counted —
    /// the dedupe of SPEC §9, atomic across nodes.
    pub async fn claim_fbl_count(
        &self,
        message_id: &str,
        what: &str,
        reporter: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO fbl_counted (message_id, what, reporter, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (message_id, what, reporter) DO NOTHING",
        )
        .bind(message_id)
        .bind(what)
        .bind(reporter)
        .bind(now)
        .execute(self.w())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Complaints received in `[since, until)` per hour (Unix ms of the hour's start, count),
    /// of one tenant (`None`: all, unattributed reports too). A complaint is a report that is
    /// not a `not-spam` reply; malformed reports count (a mailbox provider still complained).
    pub async fn complaints_by_hour(
        &self,
        tenant: Option<&str>,
        since: Millis,
        until: Millis,
    ) -> Result<Vec<(Millis, u64)>, StoreError> {
        let sql = format!(
            "SELECT (received_at / {HOUR}) * {HOUR} AS hour, COUNT(*) AS n FROM fbl_reports \
             WHERE {COMPLAINT} AND received_at >= $1 AND received_at < $2{} \
             GROUP BY (received_at / {HOUR}) * {HOUR} ORDER BY hour",
            if tenant.is_some() {
                " AND tenant = $3"
            } else {
                ""
            }
        );
        let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .bind(until);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let rows = q.fetch_all(self.r()).await?;
        Ok(rows
            .into_iter()
            .map(|(h, n)| (h, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Complaints received in `[since, until)` per attributed account (tenant, account, count),
    /// of one tenant (`None`: all), most first, at most `limit`.
    pub async fn complaints_by_account(
        &self,
        tenant: Option<&str>,
        since: Millis,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let n = if tenant.is_some() { 4 } else { 3 };
        let sql = format!(
            "SELECT tenant, account, COUNT(*) AS n FROM fbl_reports \
             WHERE {COMPLAINT} AND account IS NOT NULL AND tenant IS NOT NULL \
             AND received_at >= $1 AND received_at < $2{} \
             GROUP BY tenant, account ORDER BY n DESC, tenant, account LIMIT ${n}",
            if tenant.is_some() {
                " AND tenant = $3"
            } else {
                ""
            }
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .bind(until);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let rows = q
            .bind(i64::from(limit.clamp(1, MAX_FBL_LIMIT)))
            .fetch_all(self.r())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(t, a, n)| (t, a, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Trace events of `kind` recorded after sequence number `after` (oldest first, at most
    /// `limit`), with their sequence numbers — how the bounce-rate watcher follows delivery's
    /// `bounced` events without a hook in the queue.
    pub async fn events_after(
        &self,
        kind: EventKind,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, TraceEvent)>, StoreError> {
        let rows: Vec<(i64, String, i64, String, String)> = sqlx::query_as(
            "SELECT seq, message_id, at, detail, data FROM events WHERE kind = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(kind.as_str())
        .bind(after)
        .bind(i64::from(limit.clamp(1, MAX_FBL_LIMIT)))
        .fetch_all(self.r())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, message_id, at, detail, data)| {
                let data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
                (
                    seq,
                    TraceEvent {
                        message_id,
                        at,
                        kind,
                        detail,
                        data,
                    },
                )
            })
            .collect())
    }

    /// The highest trace event sequence number (0 when there is none).
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(self.r())
            .await?;
        Ok(n)
    }
}
