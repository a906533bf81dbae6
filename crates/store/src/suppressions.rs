//! Suppressed recipients (issue 25): per tenant, a recipient that hard-bounced (`5.1.x` at our
//! delivery, or a trusted DSN) or that an admin added is refused at RCPT until `until`. One row
//! per (tenant, recipient), the recipient lowercase; a new bounce extends the row and never
//! shortens it. Expired rows are ignored by every read and deleted by [`Store::prune_suppressions`].
//!
//! A suppression belongs to one tenant only: another tenant sending to the same address is not
//! refused (one tenant's bounce data never reaches another's mail).

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::StoreError;

/// Upper bound of one listing page.
pub const MAX_SUPPRESSIONS_LIMIT: u32 = 10_000;

/// One suppressed recipient of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub tenant: String,
    /// Lowercase address.
    pub recipient: String,
    /// Refused until then (Unix ms).
    pub until: Millis,
    pub created_at: Millis,
    /// `bounce` (5.1.x at our delivery), `dsn` (a trusted DSN) or `manual` (an admin).
    pub source: String,
    /// The remote's reply, the DSN's status, or the admin's note.
    pub reason: String,
    /// The message whose bounce suppressed it.
    pub message_id: Option<String>,
}

/// The stored form of a recipient: without angle brackets and surrounding space, lowercase.
/// `Invalid` unless it is `local@domain` of printable characters, at most 320 bytes.
pub fn normalize_recipient(addr: &str) -> Result<String, StoreError> {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = a.len() <= 320
        && a.rsplit_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && a.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if !ok {
        return Err(StoreError::invalid(format!(
            "not a recipient address: {:?}",
            a.chars().take(80).collect::<String>()
        )));
    }
    Ok(a.to_ascii_lowercase())
}

type Row = (String, String, i64, i64, String, String, Option<String>);

fn from_row(
    (tenant, recipient, until, created_at, source, reason, message_id): Row,
) -> Suppression {
    Suppression {
        tenant,
        recipient,
        until,
        created_at,
        source,
        reason,
        message_id,
    }
}

const COLUMNS: &str = "tenant, recipient, until_at, created_at, source, reason, message_id";

impl Store {
    /// Suppresses `s.recipient` for `s.tenant` (normalised first). An existing row keeps the
    /// later `until` and takes the new source, reason and message.
    pub async fn suppress(&self, s: &Suppression) -> Result<Suppression, StoreError> {
        let recipient = normalize_recipient(&s.recipient)?;
        let reason: String = s
            .reason
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let sql = format!(
            "INSERT INTO suppressions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant, recipient) DO UPDATE SET \
             until_at = CASE WHEN excluded.until_at > suppressions.until_at \
                             THEN excluded.until_at ELSE suppressions.until_at END, \
             source = excluded.source, reason = excluded.reason, \
             message_id = excluded.message_id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&s.tenant)
            .bind(&recipient)
            .bind(s.until)
            .bind(s.created_at)
            .bind(&s.source)
            .bind(&reason)
            .bind(s.message_id.as_deref())
            .execute(self.w())
            .await?;
        self.suppression(&s.tenant, &recipient, i64::MIN)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("suppression of {recipient}")))
    }

    /// The tenant's suppression of `recipient` still in force at `now`.
    pub async fn suppression(
        &self,
        tenant: &str,
        recipient: &str,
        now: Millis,
    ) -> Result<Option<Suppression>, StoreError> {
        let Ok(recipient) = normalize_recipient(recipient) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM suppressions \
             WHERE tenant = $1 AND recipient = $2 AND until_at > $3"
        );
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(&recipient)
            .bind(now)
            .fetch_optional(self.r())
            .await?;
        Ok(row.map(from_row))
    }

    /// Suppressions in force at `now`, of one tenant or of all (`None`), newest first.
    pub async fn list_suppressions(
        &self,
        tenant: Option<&str>,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<Suppression>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_SUPPRESSIONS_LIMIT));
        let sql = format!(
            "SELECT {COLUMNS} FROM suppressions \
             WHERE ($1 IS NULL OR tenant = $1) AND until_at > $2 \
             ORDER BY created_at DESC, tenant, recipient LIMIT $3"
        );
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(now)
            .bind(limit)
            .fetch_all(self.r())
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Lifts the tenant's suppression of `recipient`; `NotFound` when there is none.
    pub async fn unsuppress(&self, tenant: &str, recipient: &str) -> Result<(), StoreError> {
        let recipient = normalize_recipient(recipient)?;
        let done = sqlx::query("DELETE FROM suppressions WHERE tenant = $1 AND recipient = $2")
            .bind(tenant)
            .bind(&recipient)
            .execute(self.w())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("suppression of {recipient}")));
        }
        Ok(())
    }

    /// Deletes up to `batch` suppressions expired at `now`; returns how many.
    pub async fn prune_suppressions(&self, now: Millis, batch: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM suppressions WHERE (tenant, recipient) IN \
             (SELECT tenant, recipient FROM suppressions WHERE until_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(i64::from(batch.max(1)))
        .execute(self.w())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_normalised_or_refused() {
        assert_eq!(
            normalize_recipient(" <Bob@X.Example> ").unwrap(),
            "bob@x.example"
        );
        for bad in [
            "",
            "bob",
            "@x.example",
            "bob@",
            "a b@x.example",
            "a\r\n@x.example",
        ] {
            assert!(normalize_recipient(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_recipient(&format!("{}@x.example", "a".repeat(320))).is_err());
    }
}
