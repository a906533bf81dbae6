//! `outguard trace`: find messages by id, sender, recipient and time, and show one message's
//! event timeline (SPEC §2.8).

use clap::Args;
use outguard_store::Store;
use outguard_types::model::{MessageFilter, MessageRecord, TraceEvent};
use outguard_types::text::escape_control;

use super::UsageError;

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Message id (the `queued as` id).
    #[arg(long)]
    pub id: Option<String>,
    /// Envelope sender.
    #[arg(long)]
    pub from: Option<String>,
    /// A recipient.
    #[arg(long)]
    pub to: Option<String>,
    /// Only messages received after this: RFC 3339 time, or an age like `2h`.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// `2h` → now − 2 h; `2026-11-23T10:00:00Z` → that instant (ms).
pub fn parse_since(s: &str, now: i64) -> Result<i64, UsageError> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    }
    humantime::parse_rfc3339_weak(s)
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        })
        .map_err(|_| {
            UsageError(format!(
                "--since: `{s}` is neither a time (2026-11-23T10:00:00Z) nor an age (2h)"
            ))
        })
}

pub async fn run(a: TraceArgs, store: &Store, json: bool) -> anyhow::Result<()> {
    let now = outguard_types::time::now_ms();
    let filter = MessageFilter {
        id: a.id.clone(),
        from: a.from,
        to: a.to,
        since: a
            .since
            .as_deref()
            .map(|s| parse_since(s, now))
            .transpose()?,
        limit: Some(a.limit),
        ..MessageFilter::default()
    };
    let msgs = store.search_messages(&filter).await?;
    if let Some(id) = &a.id {
        let events = store.events(id).await?;
        if msgs.is_empty() && events.is_empty() {
            anyhow::bail!("no message with id {id}");
        }
        if json {
            let m = msgs.first();
            out!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"message": m, "events": events}))?
            );
        } else {
            if let Some(m) = msgs.first() {
                print_messages(std::slice::from_ref(m));
                out!();
            }
            print_events(&events);
        }
        return Ok(());
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&msgs)?);
    } else {
        print_messages(&msgs);
    }
    Ok(())
}

pub fn fmt_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn print_messages(msgs: &[MessageRecord]) {
    print_message_header();
    for m in msgs {
        print_message_line(&MessageLine {
            id: &m.id,
            received_at: m.received_at,
            state: m.state.as_str(),
            pool: m.pool.as_deref(),
            class: m.class.map(|c| c.as_str()),
            mail_from: &m.mail_from,
            rcpts: &m.rcpts,
        });
    }
}

/// The columns of one message row (shared by `trace` and `queue list`).
pub struct MessageLine<'a> {
    pub id: &'a str,
    pub received_at: i64,
    pub state: &'a str,
    pub pool: Option<&'a str>,
    pub class: Option<&'a str>,
    pub mail_from: &'a str,
    pub rcpts: &'a [String],
}

pub fn print_message_header() {
    out!(
        "{:<32}  {:<20}  {:<11}  {:<9}  {:<10}  {:<28}  TO",
        "ID",
        "RECEIVED",
        "STATE",
        "POOL",
        "CLASS",
        "FROM"
    );
}

pub fn print_message_line(m: &MessageLine<'_>) {
    // Stored addresses come from SMTP peers and policies: escape what would drive a terminal.
    let from = escape_control(if m.mail_from.is_empty() {
        "<>"
    } else {
        m.mail_from
    });
    out!(
        "{:<32}  {:<20}  {:<11}  {:<9}  {:<10}  {:<28}  {}",
        m.id,
        fmt_time(m.received_at),
        m.state,
        m.pool.unwrap_or("-"),
        m.class.unwrap_or("-"),
        from,
        escape_control(&m.rcpts.join(",")),
    );
}

pub(super) fn print_events(events: &[TraceEvent]) {
    for e in events {
        out!(
            "{}  {:<11}  {}",
            fmt_time(e.at),
            e.kind.as_str(),
            escape_control(&e.detail)
        );
    }
}
