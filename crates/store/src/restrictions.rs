//! Restriction records (SPEC §3): who is blocked, why, until when, and who lifted it. Records
//! are history: a lift updates the record, nothing is deleted, so the lift rules ("at most
//! `max_unblocks_per_day`", "not again by the same limit that day") can be answered from here.
//!
//! Every insert and update bumps `restrictions_version` in the same transaction: every node
//! polls that one row (about once a second) and reloads its restriction cache when it moved,
//! so a restriction or a lift made anywhere (another node, the CLI) holds everywhere at once.

use outguard_policy::restriction::utc_day_start;
use outguard_policy::{Restriction, Subject};
use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::{StoreError, bad_column};
use crate::policies::{RESTRICTIONS_VERSION, bump};

const DAY_MS: Millis = 24 * 3600 * 1000;

/// A restriction with its store id. Serialises flat: `{"id", "subject", "tenant", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRestriction {
    pub id: String,
    #[serde(flatten)]
    pub restriction: Restriction,
}

/// The searchable key of a subject: kind and id (account addresses lowercased).
fn subject_key(s: &Subject) -> (&'static str, String) {
    match s {
        Subject::Account(a) => ("account", a.to_ascii_lowercase()),
        Subject::Connector(c) => ("connector", c.clone()),
        Subject::Tenant(t) => ("tenant", t.clone()),
    }
}

const COLUMNS: &str = "id, data";

fn from_row((id, data): (String, String)) -> Result<StoredRestriction, StoreError> {
    let restriction =
        serde_json::from_str(&data).map_err(|_| bad_column("restrictions.data", &data))?;
    Ok(StoredRestriction { id, restriction })
}

fn encode(r: &Restriction) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| StoreError::invalid(format!("cannot encode: {e}")))
}

fn wall_clock() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// A counter that moves on every restriction insert or update (lift).
    pub async fn restrictions_version(&self) -> Result<i64, StoreError> {
        self.version(RESTRICTIONS_VERSION).await
    }

    /// Stores a new restriction and returns its id.
    pub async fn insert_restriction(&self, r: &Restriction) -> Result<String, StoreError> {
        let id = self.insert(r, false).await?;
        id.ok_or_else(|| StoreError::invalid("restriction was not stored"))
    }

    /// Stores `r` unless its subject already has an active restriction (not lifted, not
    /// expired at `r.created_at`): returns the new id, or `None` when another session or node
    /// got there first. The version bump comes first and locks the version row, so concurrent
    /// callers on every node are serialised and exactly one inserts: the single decider that
    /// raises the alert and sends the notification once for the whole cluster.
    pub async fn insert_restriction_once(
        &self,
        r: &Restriction,
    ) -> Result<Option<String>, StoreError> {
        self.insert(r, true).await
    }

    /// The one INSERT both of the above run; `once` adds the "no active restriction" guard.
    async fn insert(&self, r: &Restriction, once: bool) -> Result<Option<String>, StoreError> {
        const PLAIN: &str = "INSERT INTO restrictions (id, tenant, subject_kind, subject_id, created_at, until_at, lifted_at, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        const ONCE: &str = "INSERT INTO restrictions (id, tenant, subject_kind, subject_id, created_at, until_at, lifted_at, data) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS (SELECT 1 FROM restrictions \
             WHERE subject_kind = $3 AND subject_id = $4 AND lifted_at IS NULL AND (until_at IS NULL OR until_at > $5))";
        let id = uuid::Uuid::now_v7().simple().to_string();
        let (kind, sid) = subject_key(&r.subject);
        let mut tx = self.w().begin().await?;
        bump(&mut tx, RESTRICTIONS_VERSION).await?;
        let done = sqlx::query(if once { ONCE } else { PLAIN })
            .bind(&id)
            .bind(&r.tenant)
            .bind(kind)
            .bind(&sid)
            .bind(r.created_at)
            .bind(r.until)
            .bind(r.lifted.as_ref().map(|l| l.at))
            .bind(encode(r)?)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Replaces restriction `id` (a lift: see `outguard_policy::restriction::lift`).
    pub async fn update_restriction(&self, id: &str, r: &Restriction) -> Result<(), StoreError> {
        let (kind, sid) = subject_key(&r.subject);
        let mut tx = self.w().begin().await?;
        bump(&mut tx, RESTRICTIONS_VERSION).await?;
        let done = sqlx::query(
            "UPDATE restrictions SET tenant = $2, subject_kind = $3, subject_id = $4, created_at = $5, \
             until_at = $6, lifted_at = $7, data = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(&r.tenant)
        .bind(kind)
        .bind(&sid)
        .bind(r.created_at)
        .bind(r.until)
        .bind(r.lifted.as_ref().map(|l| l.at))
        .bind(encode(r)?)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("restriction {id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn restriction(&self, id: &str) -> Result<Option<StoredRestriction>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT id, data FROM restrictions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.r())
                .await?;
        row.map(from_row).transpose()
    }

    /// Restrictions in force at `now` (not lifted, `until` unset or later), oldest first.
    pub async fn active_restrictions(
        &self,
        now: Millis,
    ) -> Result<Vec<StoredRestriction>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM restrictions WHERE lifted_at IS NULL \
             AND (until_at IS NULL OR until_at > $1) ORDER BY created_at, id"
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(self.r())
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// What the relay's restriction cache needs: everything in force at `now` plus everything
    /// created or lifted at or after `since` (the lift rules look at today's lifts), oldest first.
    pub async fn current_restrictions(
        &self,
        since: Millis,
        now: Millis,
    ) -> Result<Vec<StoredRestriction>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM restrictions WHERE created_at >= $1 OR lifted_at >= $1 \
             OR (lifted_at IS NULL AND (until_at IS NULL OR until_at > $2)) ORDER BY created_at, id"
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .bind(now)
            .fetch_all(self.r())
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The restrictions of one subject that matter from `since` on (pass the start of the UTC
    /// day): created or lifted since then, or still unlifted and not expired by then. This is
    /// the `history` that `check_sender`, `exempt_today` and `lifts_today` take. Oldest first.
    pub async fn restriction_history(
        &self,
        subject: &Subject,
        since: Millis,
    ) -> Result<Vec<Restriction>, StoreError> {
        let (kind, sid) = subject_key(subject);
        let sql = format!(
            "SELECT {COLUMNS} FROM restrictions WHERE subject_kind = $1 AND subject_id = $2 \
             AND (created_at >= $3 OR lifted_at >= $3 \
                  OR (lifted_at IS NULL AND (until_at IS NULL OR until_at > $3))) \
             ORDER BY created_at, id"
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(kind)
            .bind(&sid)
            .bind(since)
            .fetch_all(self.r())
            .await?;
        rows.into_iter()
            .map(|row| from_row(row).map(|s| s.restriction))
            .collect()
    }

    /// The active restrictions of one subject at `now`, oldest first (the CLI and API lift
    /// the oldest one).
    pub async fn active_restrictions_of(
        &self,
        subject: &Subject,
        now: Millis,
    ) -> Result<Vec<StoredRestriction>, StoreError> {
        let (kind, sid) = subject_key(subject);
        let sql = format!(
            "SELECT {COLUMNS} FROM restrictions WHERE subject_kind = $1 AND subject_id = $2 \
             AND lifted_at IS NULL AND (until_at IS NULL OR until_at > $3) ORDER BY created_at, id"
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(kind)
            .bind(&sid)
            .bind(now)
            .fetch_all(self.r())
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// How many restrictions of `subject` were lifted during the UTC day holding `now`.
    pub async fn lifts_today(&self, subject: &Subject, now: Millis) -> Result<u32, StoreError> {
        let (kind, sid) = subject_key(subject);
        let day = utc_day_start(now);
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM restrictions WHERE subject_kind = $1 AND subject_id = $2 \
             AND lifted_at >= $3 AND lifted_at < $4",
        )
        .bind(kind)
        .bind(&sid)
        .bind(day)
        .bind(day + DAY_MS)
        .fetch_one(self.r())
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Restrictions newest first, of one tenant or all. `active_at`: only those in force then.
    pub async fn list_restrictions_at(
        &self,
        tenant: Option<&str>,
        active_at: Option<Millis>,
    ) -> Result<Vec<StoredRestriction>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM restrictions WHERE 1 = 1");
        let mut n = 0;
        if tenant.is_some() {
            n += 1;
            sql.push_str(&format!(" AND tenant = ${n}"));
        }
        if active_at.is_some() {
            n += 1;
            sql.push_str(&format!(
                " AND lifted_at IS NULL AND (until_at IS NULL OR until_at > ${n})"
            ));
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC");
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        if let Some(at) = active_at {
            q = q.bind(at);
        }
        let rows = q.fetch_all(self.r()).await?;
        rows.into_iter().map(from_row).collect()
    }

    /// [`Store::list_restrictions_at`] with `active_only` judged by the system clock (the CLI
    /// and API; decisions use the `_at` form with an injected time).
    pub async fn list_restrictions(
        &self,
        tenant: Option<&str>,
        active_only: bool,
    ) -> Result<Vec<StoredRestriction>, StoreError> {
        let at = active_only.then(wall_clock);
        self.list_restrictions_at(tenant, at).await
    }
}
