//! Message records and their trace events (SPEC §2.8): what `outguard trace` and
//! `GET /api/v1/messages` search.
//!
//! - `insert_message` is an upsert (same id → the record and recipients are replaced), so a
//!   retried or replayed write — e.g. buffered while PostgreSQL was away — is harmless.
//! - `append_events` writes a whole batch in one transaction with multi-row INSERTs: it is on the
//!   hot path (hundreds of messages/s, several events each). Events have no foreign key to
//!   messages, so they may be flushed before the message row.
//! - Searches are newest first; `from`/`to` match addresses case-insensitively, or a whole domain
//!   when given as `@domain`; `to` matches any recipient.

use outguard_types::model::{
    EventKind, MessageFilter, MessageRecord, MessageState, Millis, Submitter, TraceEvent,
};
use outguard_types::verdict::Class;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::Store;
use crate::error::{StoreError, bad_column};

/// Rows per multi-row INSERT (5 parameters each: well under SQLite's and PostgreSQL's limits).
const EVENT_CHUNK: usize = 200;
const RCPT_CHUNK: usize = 300;
pub const DEFAULT_SEARCH_LIMIT: u32 = 100;
pub const MAX_SEARCH_LIMIT: u32 = 10_000;

const MESSAGE_COLS: &str = "id, tenant, submitter_kind, submitter_id, mail_from, header_from, \
    message_id_header, subject, size, received_at, state, pool, class, score, node, body_digest";

fn submitter_parts(s: &Submitter) -> (&'static str, Option<&str>) {
    match s {
        Submitter::Account(a) => ("account", Some(a)),
        Submitter::Connector(c) => ("connector", Some(c)),
        Submitter::System => ("system", None),
    }
}

fn parse_class(s: &str) -> Option<Class> {
    [Class::Clean, Class::Suspicious, Class::Spam]
        .into_iter()
        .find(|c| c.as_str() == s)
}

fn message_row(row: &AnyRow, rcpts: Vec<String>) -> Result<MessageRecord, StoreError> {
    let kind: String = row.try_get("submitter_kind")?;
    let sid: Option<String> = row.try_get("submitter_id")?;
    let submitter = match (kind.as_str(), sid) {
        ("account", Some(a)) => Submitter::Account(a),
        ("connector", Some(c)) => Submitter::Connector(c),
        ("system", _) => Submitter::System,
        _ => return Err(bad_column("messages.submitter_kind", &kind)),
    };
    let state: String = row.try_get("state")?;
    let class: Option<String> = row.try_get("class")?;
    let size: i64 = row.try_get("size")?;
    Ok(MessageRecord {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        submitter,
        mail_from: row.try_get("mail_from")?,
        rcpts,
        header_from: row.try_get("header_from")?,
        message_id_header: row.try_get("message_id_header")?,
        subject: row.try_get("subject")?,
        size: u64::try_from(size).unwrap_or(0),
        received_at: row.try_get("received_at")?,
        state: MessageState::parse(&state).ok_or_else(|| bad_column("messages.state", &state))?,
        pool: row.try_get("pool")?,
        class: class
            .map(|c| parse_class(&c).ok_or_else(|| bad_column("messages.class", &c)))
            .transpose()?,
        score: row.try_get("score")?,
        node: row.try_get("node")?,
        body_digest: row.try_get("body_digest")?,
    })
}

const INSERT_MESSAGE: &str = "INSERT INTO messages (id, tenant, submitter_kind, submitter_id, \
       mail_from, header_from, message_id_header, subject, size, received_at, state, pool, class, \
       node, body_digest, score) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $SCORE) \
     ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, \
       submitter_kind = excluded.submitter_kind, submitter_id = excluded.submitter_id, \
       mail_from = excluded.mail_from, header_from = excluded.header_from, \
       message_id_header = excluded.message_id_header, subject = excluded.subject, \
       size = excluded.size, received_at = excluded.received_at, state = excluded.state, \
       pool = excluded.pool, class = excluded.class, score = excluded.score, node = excluded.node, \
       body_digest = COALESCE(excluded.body_digest, messages.body_digest)";

/// `($1, …, $k), ($k+1, …)`: `rows` tuples of `per_row` placeholders, numbered from `$1`.
fn values_clause(rows: usize, per_row: usize) -> String {
    let mut s = String::new();
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..per_row {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("${}", r * per_row + c + 1));
        }
        s.push(')');
    }
    s
}

/// The statements of [`Store::insert_message`] on one connection (inside a transaction).
async fn insert_message_on(
    conn: &mut sqlx::AnyConnection,
    m: &MessageRecord,
) -> Result<(), StoreError> {
    let (kind, sid) = submitter_parts(&m.submitter);
    // sqlx's Any driver sends a NULL f64 as a float4 NULL on PostgreSQL, which poisons the
    // statement cached on that connection for later non-NULL f64 binds (22P03). So a
    // missing score is written as a literal NULL in a statement of its own.
    let sql = INSERT_MESSAGE.replace("$SCORE", if m.score.is_some() { "$16" } else { "NULL" });
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(&m.id)
        .bind(m.tenant.as_deref())
        .bind(kind)
        .bind(sid)
        .bind(&m.mail_from)
        .bind(m.header_from.as_deref())
        .bind(m.message_id_header.as_deref())
        .bind(m.subject.as_deref())
        .bind(i64::try_from(m.size).unwrap_or(i64::MAX))
        .bind(m.received_at)
        .bind(m.state.as_str())
        .bind(m.pool.as_deref())
        .bind(m.class.map(|c| c.as_str()))
        .bind(&m.node)
        .bind(m.body_digest.as_deref());
    if let Some(score) = m.score {
        q = q.bind(score);
    }
    q.execute(&mut *conn).await?;
    sqlx::query("DELETE FROM message_rcpts WHERE message_id = $1")
        .bind(&m.id)
        .execute(&mut *conn)
        .await?;
    let mut idx = 0i64;
    for chunk in m.rcpts.chunks(RCPT_CHUNK) {
        let sql = format!(
            "INSERT INTO message_rcpts (message_id, idx, rcpt) VALUES {}",
            values_clause(chunk.len(), 3)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for rcpt in chunk {
            q = q.bind(&m.id).bind(idx).bind(rcpt);
            idx += 1;
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Multi-row INSERTs of `events` on one connection (inside a transaction).
async fn append_events_on(
    conn: &mut sqlx::AnyConnection,
    events: &[&TraceEvent],
) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENT_CHUNK) {
        let sql = format!(
            "INSERT INTO events (message_id, at, kind, detail, data) VALUES {}",
            values_clause(chunk.len(), 5)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for e in chunk {
            let data = if e.data.is_null() {
                "null".to_string()
            } else {
                e.data.to_string()
            };
            q = q
                .bind(&e.message_id)
                .bind(e.at)
                .bind(e.kind.as_str())
                .bind(&e.detail)
                .bind(data);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

const UPDATE_STATE: &str = "UPDATE messages SET state = $1, pool = COALESCE($2, pool) WHERE id = $3 \
     AND state NOT IN ('delivered', 'bounced', 'rejected', 'deleted')";

/// Moves a message forward (see [`Store::set_message_state`]); returns the rows changed.
async fn update_state_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    state: MessageState,
    pool: Option<&str>,
) -> Result<u64, StoreError> {
    let done = sqlx::query(UPDATE_STATE)
        .bind(state.as_str())
        .bind(pool)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// One write of a trace batch ([`Store::write_trace_batch`]).
#[derive(Debug, Clone, Copy)]
pub enum TraceWrite<'a> {
    Message(&'a MessageRecord),
    Event(&'a TraceEvent),
    State {
        id: &'a str,
        state: MessageState,
        pool: Option<&'a str>,
    },
}

/// A bind value for dynamically built searches.
enum Param {
    Text(String),
    Int(i64),
}

impl Store {
    /// Records (or replaces) one message and its recipients.
    pub async fn insert_message(&self, m: &MessageRecord) -> Result<(), StoreError> {
        let mut tx = self.w().begin().await?;
        insert_message_on(&mut tx, m).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One trace batch — message records, events and state changes, in order — in ONE
    /// transaction (issue 18: a commit per message record and per state change was several
    /// commits per message on the one writer task of each node, and the nodes' commits queued
    /// on PostgreSQL's WAL flush). A state change for a message not (yet) recorded changes
    /// nothing, as with [`Store::set_message_state`] minus the not-found error.
    pub async fn write_trace_batch(&self, batch: &[TraceWrite<'_>]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.w().begin().await?;
        let mut events: Vec<&TraceEvent> = Vec::new();
        for w in batch {
            match w {
                TraceWrite::Event(e) => events.push(e),
                TraceWrite::Message(m) => {
                    append_events_on(&mut tx, &events).await?;
                    events.clear();
                    insert_message_on(&mut tx, m).await?;
                }
                TraceWrite::State { id, state, pool } => {
                    append_events_on(&mut tx, &events).await?;
                    events.clear();
                    update_state_on(&mut tx, id, *state, *pool).await?;
                }
            }
        }
        append_events_on(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a message to `state`; `pool` (when given) records the pool it was routed to.
    /// Only forward: once a message is delivered, bounced, rejected or deleted, a late event
    /// (a `deferred` that was overtaken, say) changes nothing — the record keeps its final state.
    pub async fn set_message_state(
        &self,
        id: &str,
        state: MessageState,
        pool: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.w().acquire().await?;
        if update_state_on(&mut conn, id, state, pool).await? == 0 {
            let exists = sqlx::query("SELECT id FROM messages WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            if exists.is_none() {
                return Err(StoreError::not_found(format!("message {id}")));
            }
        }
        Ok(())
    }

    pub async fn message(&self, id: &str) -> Result<Option<MessageRecord>, StoreError> {
        let filter = MessageFilter {
            id: Some(id.to_string()),
            limit: Some(1),
            ..Default::default()
        };
        Ok(self.search_messages(&filter).await?.into_iter().next())
    }

    /// Messages matching every given criterion, newest first, at most `limit` (default 100).
    pub async fn search_messages(
        &self,
        f: &MessageFilter,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let mut sql = format!("SELECT {MESSAGE_COLS} FROM messages m WHERE 1 = 1");
        let mut params: Vec<Param> = Vec::new();
        let mut add = |sql: &mut String, clause: &str, p: Param| {
            params.push(p);
            sql.push_str(&clause.replace("$?", &format!("${}", params.len())));
        };
        if let Some(id) = &f.id {
            add(&mut sql, " AND m.id = $?", Param::Text(id.clone()));
        }
        if let Some(from) = &f.from {
            let (op, v) = addr_match(from);
            add(
                &mut sql,
                &format!(" AND lower(m.mail_from) {op} $?"),
                Param::Text(v),
            );
        }
        if let Some(to) = &f.to {
            let (op, v) = addr_match(to);
            let clause = format!(
                " AND EXISTS (SELECT 1 FROM message_rcpts r WHERE r.message_id = m.id AND lower(r.rcpt) {op} $?)"
            );
            add(&mut sql, &clause, Param::Text(v));
        }
        if let Some(since) = f.since {
            add(&mut sql, " AND m.received_at >= $?", Param::Int(since));
        }
        if let Some(until) = f.until {
            add(&mut sql, " AND m.received_at < $?", Param::Int(until));
        }
        if let Some(tenant) = &f.tenant {
            add(&mut sql, " AND m.tenant = $?", Param::Text(tenant.clone()));
        }
        if let Some(state) = f.state {
            add(
                &mut sql,
                " AND m.state = $?",
                Param::Text(state.as_str().to_string()),
            );
        }
        let limit = f
            .limit
            .unwrap_or(DEFAULT_SEARCH_LIMIT)
            .clamp(1, MAX_SEARCH_LIMIT);
        add(
            &mut sql,
            " ORDER BY m.received_at DESC, m.id DESC LIMIT $?",
            Param::Int(i64::from(limit)),
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in params {
            q = match p {
                Param::Text(s) => q.bind(s),
                Param::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(self.r()).await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let mut rcpts = self.rcpts_of(&ids).await?;
        rows.iter()
            .zip(ids)
            .map(|(row, id)| message_row(row, rcpts.remove(&id).unwrap_or_default()))
            .collect()
    }

    async fn rcpts_of(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError> {
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT message_id, rcpt FROM message_rcpts WHERE message_id IN ({}) ORDER BY message_id, idx",
                marks.join(", ")
            );
            let mut q = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            for (id, rcpt) in q.fetch_all(self.r()).await? {
                out.entry(id).or_default().push(rcpt);
            }
        }
        Ok(out)
    }

    /// Appends trace events; the whole batch is one transaction.
    pub async fn append_events(&self, events: &[TraceEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let refs: Vec<&TraceEvent> = events.iter().collect();
        let mut tx = self.w().begin().await?;
        append_events_on(&mut tx, &refs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A message's events in the order they were appended.
    pub async fn events(&self, message_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
        let rows: Vec<(String, i64, String, String, String)> = sqlx::query_as(
            "SELECT message_id, at, kind, detail, data FROM events WHERE message_id = $1 ORDER BY seq",
        )
        .bind(message_id)
        .fetch_all(self.r())
        .await?;
        rows.into_iter()
            .map(|(message_id, at, kind, detail, data)| {
                Ok(TraceEvent {
                    message_id,
                    at,
                    kind: EventKind::parse(&kind)
                        .ok_or_else(|| bad_column("events.kind", &kind))?,
                    detail,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// The id of the newest message whose `Message-ID:` header is `header` (with or without `<>`).
    pub async fn find_message_by_header_id(
        &self,
        header: &str,
    ) -> Result<Option<String>, StoreError> {
        let bare = header.trim().trim_start_matches('<').trim_end_matches('>');
        if bare.is_empty() {
            return Ok(None);
        }
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM messages WHERE message_id_header = $1 OR message_id_header = $2 \
             ORDER BY received_at DESC LIMIT 1",
        )
        .bind(bare)
        .bind(format!("<{bare}>"))
        .fetch_optional(self.r())
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Messages received in `[since, until)` of one tenant (`None`: all), counted per hour,
    /// state and pool; grouped in SQL, so a busy day costs one small result, not its rows. Mail
    /// Outguard generated itself (notifications, DSNs) is not the tenants' traffic and is left out.
    pub async fn hourly_volume(
        &self,
        tenant: Option<&str>,
        since: Millis,
        until: Millis,
    ) -> Result<Vec<HourlyVolume>, StoreError> {
        let sql = format!(
            "SELECT (received_at / {HOUR}) * {HOUR} AS hour, state, pool, COUNT(*) AS n, {SPAM_COUNT} AS spam \
             FROM messages WHERE received_at >= $1 AND received_at < $2 AND submitter_kind <> 'system'{} \
             GROUP BY (received_at / {HOUR}) * {HOUR}, state, pool ORDER BY hour, state, pool",
            tenant_clause(tenant)
        );
        let mut q =
            sqlx::query_as::<_, (i64, String, Option<String>, i64, i64)>(AssertSqlSafe(sql))
                .bind(since)
                .bind(until);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        q.fetch_all(self.r())
            .await?
            .into_iter()
            .map(|(hour, state, pool, n, spam)| {
                Ok(HourlyVolume {
                    hour,
                    state: MessageState::parse(&state)
                        .ok_or_else(|| bad_column("messages.state", &state))?,
                    pool,
                    messages: count(n),
                    spam: count(spam),
                })
            })
            .collect()
    }

    /// The `limit` envelope senders with the most messages in `[since, until)` of one tenant
    /// (`None`: all), most first (ties by address); Outguard's own mail is not a sender here.
    pub async fn top_senders(
        &self,
        tenant: Option<&str>,
        since: Millis,
        until: Millis,
        limit: u32,
    ) -> Result<Vec<SenderVolume>, StoreError> {
        let n = if tenant.is_some() { 4 } else { 3 };
        let sql = format!(
            "SELECT mail_from, COUNT(*) AS n, {SPAM_COUNT} AS spam FROM messages \
             WHERE received_at >= $1 AND received_at < $2 AND submitter_kind <> 'system'{} \
             GROUP BY mail_from ORDER BY n DESC, mail_from LIMIT ${n}",
            tenant_clause(tenant)
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64)>(AssertSqlSafe(sql))
            .bind(since)
            .bind(until);
        if let Some(t) = tenant {
            q = q.bind(t);
        }
        let rows = q
            .bind(i64::from(limit.clamp(1, MAX_SEARCH_LIMIT)))
            .fetch_all(self.r())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(sender, n, spam)| SenderVolume {
                sender,
                messages: count(n),
                spam: count(spam),
            })
            .collect())
    }
}

/// Messages received in one hour, in one state, toward one pool (the dashboard's charts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyVolume {
    /// Start of the hour (Unix ms, a multiple of 3,600,000).
    pub hour: Millis,
    pub state: MessageState,
    pub pool: Option<String>,
    pub messages: u64,
    /// Of those, classed suspicious or spam.
    pub spam: u64,
}

/// One envelope sender's volume in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderVolume {
    pub sender: String,
    pub messages: u64,
    pub spam: u64,
}

const HOUR: i64 = 3_600_000;
/// Counts a row as spam: every class but `clean` (as `Class::is_spam`).
const SPAM_COUNT: &str = "COUNT(CASE WHEN class IS NOT NULL AND class <> 'clean' THEN 1 END)";

/// ` AND tenant = $3` when scoped to a tenant (the window is `$1`, `$2`).
fn tenant_clause(tenant: Option<&str>) -> &'static str {
    if tenant.is_some() {
        " AND tenant = $3"
    } else {
        ""
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `("=", "a@b")` for an address, `("LIKE", "%@dom")` for `@dom`; lowercased.
fn addr_match(input: &str) -> (&'static str, String) {
    let v = input.trim().to_lowercase();
    if v.starts_with('@') {
        ("LIKE", format!("%{v}"))
    } else {
        ("=", v)
    }
}
