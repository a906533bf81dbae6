//! Recorded traffic for the what-if simulator (issue 22): the recipients the policy refused at
//! RCPT (`policy_refusals`, written by the relay's trace writer: a refused RCPT makes no message
//! record, yet it is the attempt that crossed a limit), and every submitted message of a span
//! with its recipients, in time order, in one pass each (a week can be millions of rows: no
//! per-message round trip).

use outguard_types::model::{Millis, Submitter};
use outguard_types::verdict::Class;
use sqlx::{AssertSqlSafe, Row};

use crate::Store;
use crate::error::{StoreError, bad_column};

/// One recipient the policy refused at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRefusal {
    pub at: Millis,
    pub tenant: String,
    pub submitter: Submitter,
    /// The transaction's MAIL FROM.
    pub mail_from: String,
    pub rcpt: String,
    /// `550 5.2.2` etc.
    pub reply: String,
}

/// One recorded message as the simulator reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficMessage {
    pub id: String,
    pub at: Millis,
    pub tenant: String,
    pub submitter: Submitter,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    /// None when the message was never scanned (its record has no verdict).
    pub class: Option<Class>,
    pub score: Option<f64>,
}

fn submitter_of(kind: &str, id: String) -> Result<Submitter, StoreError> {
    match kind {
        "account" => Ok(Submitter::Account(id)),
        "connector" => Ok(Submitter::Connector(id)),
        other => Err(bad_column("submitter_kind", other)),
    }
}

fn class_of(s: Option<String>) -> Option<Class> {
    let s = s?;
    [Class::Clean, Class::Suspicious, Class::Spam]
        .into_iter()
        .find(|c| c.as_str() == s)
}

/// `(tenant = $3 OR $3 IS NULL)` is awkward across the Any driver: build the clause instead.
fn tenant_clause(col: &str, tenant: Option<&str>) -> String {
    match tenant {
        Some(_) => format!(" AND {col} = $3"),
        None => String::new(),
    }
}

impl Store {
    /// Record refused recipients (one multi-row INSERT per chunk, one transaction).
    pub async fn insert_policy_refusals(&self, rows: &[PolicyRefusal]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.w().begin().await?;
        for chunk in rows.chunks(100) {
            let mut sql = String::from(
                "INSERT INTO policy_refusals (at, tenant, submitter_kind, submitter_id, \
                 mail_from, rcpt, reply) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 7;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                ));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                let (kind, id) = match &r.submitter {
                    Submitter::Account(a) => ("account", a.as_str()),
                    Submitter::Connector(c) => ("connector", c.as_str()),
                    Submitter::System => ("system", ""),
                };
                q = q
                    .bind(r.at)
                    .bind(&r.tenant)
                    .bind(kind)
                    .bind(id)
                    .bind(&r.mail_from)
                    .bind(&r.rcpt)
                    .bind(&r.reply);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Refused recipients in `[from, to)`, oldest first; one tenant's or all.
    pub async fn policy_refusals_between(
        &self,
        from: Millis,
        to: Millis,
        tenant: Option<&str>,
    ) -> Result<Vec<PolicyRefusal>, StoreError> {
        let sql = format!(
            "SELECT at, tenant, submitter_kind, submitter_id, mail_from, rcpt, reply \
             FROM policy_refusals WHERE at >= $1 AND at < $2{} ORDER BY at",
            tenant_clause("tenant", tenant)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let mut out = Vec::new();
        for row in q.fetch_all(self.r()).await? {
            let kind: String = row.try_get("submitter_kind")?;
            if kind == "system" {
                continue;
            }
            out.push(PolicyRefusal {
                at: row.try_get("at")?,
                tenant: row.try_get("tenant")?,
                submitter: submitter_of(&kind, row.try_get("submitter_id")?)?,
                mail_from: row.try_get("mail_from")?,
                rcpt: row.try_get("rcpt")?,
                reply: row.try_get("reply")?,
            });
        }
        Ok(out)
    }

    /// Messages submitted by accounts and connectors in `[from, to)` with their recipients,
    /// oldest first (Outguard's own mail — DSNs, notifications — is not a sender's traffic).
    pub async fn traffic_between(
        &self,
        from: Millis,
        to: Millis,
        tenant: Option<&str>,
    ) -> Result<Vec<TrafficMessage>, StoreError> {
        let sql = format!(
            "SELECT m.id, m.received_at, m.tenant, m.submitter_kind, m.submitter_id, \
             m.mail_from, m.class, m.score, r.rcpt FROM messages m \
             LEFT JOIN message_rcpts r ON r.message_id = m.id \
             WHERE m.received_at >= $1 AND m.received_at < $2 \
             AND m.submitter_kind IN ('account', 'connector') AND m.tenant IS NOT NULL{} \
             ORDER BY m.received_at, m.id, r.idx",
            tenant_clause("m.tenant", tenant)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let mut out: Vec<TrafficMessage> = Vec::new();
        for row in q.fetch_all(self.r()).await? {
            let id: String = row.try_get("id")?;
            let rcpt: Option<String> = row.try_get("rcpt")?;
            if out.last().is_none_or(|m| m.id != id) {
                let kind: String = row.try_get("submitter_kind")?;
                let sid: Option<String> = row.try_get("submitter_id")?;
                out.push(TrafficMessage {
                    id,
                    at: row.try_get("received_at")?,
                    tenant: row
                        .try_get::<Option<String>, _>("tenant")?
                        .unwrap_or_default(),
                    submitter: submitter_of(&kind, sid.unwrap_or_default())?,
                    mail_from: row.try_get("mail_from")?,
                    rcpts: Vec::new(),
                    class: class_of(row.try_get("class")?),
                    score: row.try_get("score")?,
                });
            }
            if let (Some(r), Some(m)) = (rcpt, out.last_mut()) {
                m.rcpts.push(r);
            }
        }
        Ok(out)
    }

    /// Delete at most `limit` refusal rows older than `before` (pruned with the trace).
    pub(crate) async fn prune_policy_refusals(
        &self,
        before: Millis,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let sql = match self.backend() {
            crate::db::Backend::Sqlite => {
                "DELETE FROM policy_refusals WHERE rowid IN (SELECT rowid FROM policy_refusals \
                 WHERE at < $1 ORDER BY at LIMIT $2)"
            }
            crate::db::Backend::Postgres => {
                "DELETE FROM policy_refusals WHERE ctid IN (SELECT ctid FROM policy_refusals \
                 WHERE at < $1 ORDER BY at LIMIT $2)"
            }
        };
        let done = sqlx::query(sql)
            .bind(before)
            .bind(limit)
            .execute(self.w())
            .await?;
        Ok(done.rows_affected())
    }
}
