//! The audit log: who changed what, when, from where (lifts, record changes, token use).
//! Append-only; read newest first.

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::StoreError;

/// One audited action. Field names are the API's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Millis,
    /// Who: `operator`, `token:<id>`, `cli`, an account address.
    pub actor: String,
    /// What: e.g. `restricted.lift`, `account.add`.
    pub action: String,
    /// The object acted on (address, tenant, domain, message id).
    pub target: String,
    /// Free text (the reason given, counts).
    pub detail: String,
    pub ip: Option<String>,
}

type AuditTuple = (i64, i64, String, String, String, String, Option<String>);

impl Store {
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        ip: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail, ip) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(ip)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditTuple> = sqlx::query_as(
            "SELECT seq, at, actor, action, target, detail, ip FROM audit_log ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, 100_000)))
        .fetch_all(self.r())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, at, actor, action, target, detail, ip)| AuditEntry {
                seq,
                at,
                actor,
                action,
                target,
                detail,
                ip,
            })
            .collect())
    }
}
