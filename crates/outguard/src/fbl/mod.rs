//! Feedback loops (SPEC §4): ARF complaint reports from mailbox providers, by SMTP on the `fbl`
//! listener ([`receive_smtp`]) or by `POST /api/v1/fbl` ([`ingest`]), and from dumps
//! (`outguard fbl import`, [`record_report`] on the store alone). Each report is parsed
//! ([`parse`]), attributed to the message, account and tenant ([`attribute`]), stored (flagged
//! when malformed — never lost, never an error), traced as a `complaint` event on the message,
//! counted towards the account's and tenant's complaint rates ([`rates`]) and, when the
//! original is included, learned as spam for the tenant ([`learn`]). Hard bounces feed the
//! same rate machinery ([`bounces`]), and so do asynchronous bounces: DSNs (RFC 3464) that
//! arrive the same ways are told from ARF reports and handled by [`dsn`].

pub mod attribute;
pub mod bounces;
pub mod dsn;
pub mod learn;
pub mod parse;
pub mod rates;

use outguard_proto::Reply;
use outguard_store::{FblRecord, Store, StoreError};
use outguard_types::model::{EventKind, Millis, TraceEvent};
use serde_json::json;

pub use parse::ParsedReport;

use crate::server::Relay;
use crate::trace::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum FblError {
    /// The report could not be stored (temporary: the sender should retry).
    #[error("cannot store the report: {0}")]
    Store(#[from] StoreError),
}

/// Parse, attribute and store one report (no counters, no trace): what every path shares.
pub async fn record_report(
    store: &Store,
    raw: &[u8],
    now: Millis,
) -> Result<(FblRecord, ParsedReport), FblError> {
    let parsed = parse::parse(raw);
    let attributed = attribute::attribute(store, &parsed).await?;
    let record = FblRecord {
        id: uuid::Uuid::now_v7().simple().to_string(),
        attributed,
        feedback_type: parsed.feedback_type.clone(),
        source_ip: parsed.source_ip.clone(),
        received_at: now,
        malformed: parsed.malformed.clone(),
        fields: serde_json::to_value(&parsed).unwrap_or_default(),
        raw: String::from_utf8_lossy(raw).into_owned(),
    };
    store.insert_fbl_report(&record, raw).await?;
    if let Some(why) = &record.malformed {
        tracing::warn!(id = %record.id, %why, "malformed feedback report stored and flagged");
    }
    Ok((record, parsed))
}

/// The `complaint` trace event of an attributed report.
pub fn complaint_event(rec: &FblRecord, message_id: &str) -> TraceEvent {
    let ua = rec
        .fields
        .get("user_agent")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown reporter");
    TraceEvent {
        message_id: message_id.to_string(),
        at: rec.received_at,
        kind: EventKind::Complaint,
        detail: format!("{} report {} from {ua}", rec.feedback_type, rec.id),
        data: json!({"report": rec.id, "feedback_type": rec.feedback_type, "source_ip": rec.source_ip}),
    }
}

/// A report received by the running relay (API or SMTP): recorded, traced, counted, learned.
/// A DSN (`multipart/report; report-type=delivery-status`) goes to [`dsn::ingest`].
/// Only a store failure is an error; a malformed report is an `Ok` record with `malformed` set.
pub async fn ingest(relay: &Relay, raw: &[u8]) -> Result<FblRecord, FblError> {
    if dsn::is_dsn(raw) {
        return dsn::ingest(relay, raw).await;
    }
    let now = now_ms();
    let (rec, parsed) = record_report(&relay.store, raw, now).await?;
    let Some(att) = &rec.attributed else {
        tracing::info!(id = %rec.id, "feedback report not attributed to any message");
        return Ok(rec);
    };
    let ev = complaint_event(&rec, &att.message_id);
    relay
        .tracer
        .event(&ev.message_id, ev.kind, ev.detail, ev.data)
        .await;
    if let (true, Some(tenant)) = (parsed.is_complaint(), att.tenant.as_deref()) {
        rates::on_event(relay, att.account.as_deref(), tenant, rates::COMPLAINT, now).await;
        if let Some(original) = &parsed.original_message {
            learn::learn_spam(relay, tenant, original).await;
        }
    }
    Ok(rec)
}

/// A report by id (`GET /api/v1/fbl/{id}`).
pub async fn get(relay: &Relay, id: &str) -> Result<Option<FblRecord>, FblError> {
    Ok(relay.store.fbl_report(id).await?)
}

/// Reports newest first (`GET /api/v1/fbl`), of one tenant or all.
pub async fn list(
    relay: &Relay,
    tenant: Option<&str>,
    limit: u32,
) -> Result<Vec<FblRecord>, FblError> {
    Ok(relay.store.list_fbl_reports(tenant, limit).await?)
}

/// DATA on the `fbl` listener: 250 once stored (malformed included), 451 if the store failed.
pub async fn receive_smtp(relay: &Relay, body: &[u8]) -> Reply {
    match ingest(relay, body).await {
        Ok(rec) => Reply::new(250, "2.0.0", format!("Ok: report {} recorded", rec.id)),
        Err(e) => {
            tracing::error!(error = %e, "feedback report not stored");
            Reply::new(451, "4.3.0", "Cannot store the report now, try again later")
        }
    }
}
