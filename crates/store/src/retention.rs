//! Retention (issue 17): deleting records older than their kind's window, one small batch per
//! call, so the caller (the relay's pruning task) can pause between batches and never hold the
//! writer for long. Each batch takes the oldest rows first through an index on its time column
//! (migration 0007). Unfinished messages — queued, deferred, held, quarantined — are never
//! deleted, nor the trace events of one, however old.

use outguard_types::model::{MessageState, Millis};

use crate::Store;
use crate::error::StoreError;

/// A kind of record with its own retention window (`[retention]` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionKind {
    /// Trace events, by their own time.
    Trace,
    /// Finished message records with their recipients (and what reports counted about them).
    Messages,
    /// Feedback-loop / DSN reports as received.
    Reports,
    Audit,
    Alerts,
    /// The DNSBL monitor's check history (`dnsbl_checks`; the latest answer per IP and zone,
    /// `dnsbl_state`, is never pruned). Kept as long as `reports`: no key of its own.
    DnsblChecks,
}

impl RetentionKind {
    pub const ALL: [RetentionKind; 6] = [
        RetentionKind::Trace,
        RetentionKind::Messages,
        RetentionKind::Reports,
        RetentionKind::Audit,
        RetentionKind::Alerts,
        RetentionKind::DnsblChecks,
    ];

    /// The kind's name (log lines, the `outguard_retention_pruned_total` label).
    pub fn name(self) -> &'static str {
        match self {
            RetentionKind::DnsblChecks => "dnsbl_checks",
            k => k.key(),
        }
    }

    /// The `[retention]` key whose window applies.
    pub fn key(self) -> &'static str {
        match self {
            RetentionKind::Trace => "trace",
            RetentionKind::Messages => "messages",
            RetentionKind::Reports => "reports",
            RetentionKind::Audit => "audit",
            RetentionKind::Alerts => "alerts",
            RetentionKind::DnsblChecks => "reports",
        }
    }
}

/// States a message never leaves: only these are pruned.
const FINISHED: [MessageState; 4] = [
    MessageState::Delivered,
    MessageState::Bounced,
    MessageState::Rejected,
    MessageState::Deleted,
];

/// `'delivered', 'bounced', …` (constants of ours, not input).
fn finished_list() -> String {
    FINISHED
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$from, $from+1, …` for `n` binds.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Delete at most `limit` records of `kind` older than `before` (Unix ms; rows at `before`
    /// or later stay). Returns how many went; fewer than `limit` means the kind is done.
    pub async fn prune_batch(
        &self,
        kind: RetentionKind,
        before: Millis,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let limit = i64::from(limit.max(1));
        let sql = match kind {
            RetentionKind::Messages => return self.prune_messages_batch(before, limit).await,
            // Refused recipients (the simulator's record of RCPTs) go with the trace.
            RetentionKind::Trace if self.prune_policy_refusals(before, limit).await? > 0 => {
                return Ok(limit.unsigned_abs());
            }
            RetentionKind::Trace => format!(
                "DELETE FROM events WHERE seq IN (SELECT e.seq FROM events e WHERE e.at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.message_id \
                 AND m.state NOT IN ({})) ORDER BY e.at LIMIT $2)",
                finished_list()
            ),
            RetentionKind::Reports => {
                "DELETE FROM fbl_reports WHERE id IN (SELECT id FROM fbl_reports \
                 WHERE received_at < $1 ORDER BY received_at LIMIT $2)"
                    .to_string()
            }
            RetentionKind::Audit => {
                "DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log \
                 WHERE at < $1 ORDER BY at LIMIT $2)"
                    .to_string()
            }
            RetentionKind::Alerts => "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts \
                 WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
                .to_string(),
            // No key column: each backend's row address (SQLite `rowid`, PostgreSQL `ctid`).
            RetentionKind::DnsblChecks => {
                let row = match self.backend() {
                    crate::db::Backend::Sqlite => "rowid",
                    crate::db::Backend::Postgres => "ctid",
                };
                format!(
                    "DELETE FROM dnsbl_checks WHERE {row} IN (SELECT {row} FROM dnsbl_checks \
                     WHERE checked_at < $1 ORDER BY checked_at LIMIT $2)"
                )
            }
        };
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .bind(limit)
            .execute(self.w())
            .await?;
        Ok(done.rows_affected())
    }

    /// The oldest finished messages received before `before`, with their recipients and the
    /// feedback counts about them, in one transaction.
    async fn prune_messages_batch(&self, before: Millis, limit: i64) -> Result<u64, StoreError> {
        let select = format!(
            "SELECT id FROM messages WHERE received_at < $1 AND state IN ({}) \
             ORDER BY received_at LIMIT $2",
            finished_list()
        );
        let ids: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
            .bind(before)
            .bind(limit)
            .fetch_all(self.r())
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let list = placeholders(1, ids.len());
        let mut tx = self.w().begin().await?;
        let mut gone = 0;
        for table in ["message_rcpts", "fbl_counted", "messages"] {
            let col = if table == "messages" {
                "id"
            } else {
                "message_id"
            };
            // A message that left a finished state meanwhile cannot exist: finished is final.
            let sql = format!("DELETE FROM {table} WHERE {col} IN ({list})");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id,) in &ids {
                q = q.bind(id.as_str());
            }
            gone = q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(gone)
    }
}
