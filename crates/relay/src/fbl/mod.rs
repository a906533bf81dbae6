//! Feedback loops (SPEC §4): ARF complaint reports from mailbox providers, by SMTP on the `fbl`
//! listener ([`receive_smtp`]) or by `POST /api/v1/fbl` ([`ingest`]), and from dumps
//! (`outguard fbl import`, [`record_report`] on the store alone). Each report is parsed
//! ([`parse`]), attributed to the message, account and tenant ([`attribute`]), stored (flagged
//! when malformed — never lost, never an error), traced as a `complaint` event on the message,
//! counted towards the account's and tenant's complaint rates ([`rates`]) and, when the
//! original is included, learned as spam for the tenant ([`learn`]). Hard bounces feed the
//! same rate machinery ([`bounces`]), and so do asynchronous bounces: DSNs (RFC 3464) that
//! arrive the same ways are told from ARF reports and handled by [`dsn`].
//!
//! Only reports a trusted reporter vouches for ([`trust`], SPEC §9) are traced, counted and
//! learned; the others are stored with `trusted: false` for operators and change nothing.
//! Reports are capped in size (the listener's and the API's byte limits) and in rate per
//! source IP ([`trust::admit`]).

pub mod attribute;
pub mod bounces;
pub mod deferrals;
pub mod digest;
pub mod dsn;
pub mod learn;
pub mod parse;
pub mod rates;
pub mod trust;

use std::net::IpAddr;

use outguard_proto::Reply;
use outguard_store::{FblAttribution, FblRecord, Store, StoreError};
use outguard_types::model::{EventKind, Millis, TraceEvent};
use serde_json::json;

pub use parse::ParsedReport;
pub use trust::Source;

use crate::server::Relay;

#[derive(Debug, thiserror::Error)]
pub enum FblError {
    /// The report could not be stored (temporary: the sender should retry).
    #[error("cannot store the report: {0}")]
    Store(#[from] StoreError),
}

/// Parse, attribute and store one report (no counters, no trace): what every path shares.
/// `trusted_by` is the trust entry that vouches for it ([`trust::vouch`]), `None`: untrusted.
pub async fn record_report(
    store: &Store,
    raw: &[u8],
    trusted_by: Option<String>,
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
        trusted: trusted_by.is_some(),
        trusted_by,
        raw: String::new(),
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

/// A report received by the running relay (API or SMTP): recorded; when a trusted reporter
/// vouches for it, also traced, counted (once per message and reporter entry) and learned
/// (when its attached copy is the message as we sent it).
/// A DSN (`multipart/report; report-type=delivery-status`) goes to [`dsn::ingest`].
/// Only a store failure is an error; a malformed report is an `Ok` record with `malformed` set.
pub async fn ingest(relay: &Relay, raw: &[u8], source: Source) -> Result<FblRecord, FblError> {
    let trusted_by = trust::vouch(&relay.cfg, source, raw).await;
    if dsn::is_dsn(raw) {
        return dsn::ingest(relay, raw, trusted_by).await;
    }
    let now = relay.clock.now_ms();
    let (rec, parsed) = record_report(&relay.store, raw, trusted_by, now).await?;
    let Some(att) = &rec.attributed else {
        tracing::info!(id = %rec.id, "feedback report not attributed to any message");
        return Ok(rec);
    };
    let Some(by) = rec.trusted_by.as_deref() else {
        tracing::info!(id = %rec.id, source = ?source, "untrusted feedback report kept, not counted");
        return Ok(rec);
    };
    let ev = complaint_event(&rec, &att.message_id);
    relay
        .tracer
        .event(&ev.message_id, ev.kind, ev.detail, ev.data)
        .await;
    if let (true, Some(tenant)) = (parsed.is_complaint(), att.tenant.as_deref()) {
        if !relay
            .store
            .claim_fbl_count(&att.message_id, rates::COMPLAINT, by, now)
            .await?
        {
            tracing::info!(id = %rec.id, reporter = %by, "complaint already counted for this message");
            return Ok(rec);
        }
        rates::on_event(relay, att.account.as_deref(), tenant, rates::COMPLAINT, now).await;
        if let Some(original) = &parsed.original_message {
            learn_if_as_sent(relay, &rec, att, tenant, original).await?;
        }
    }
    Ok(rec)
}

/// Trains the overlay with `original` only when its body digest is the one recorded when the
/// message was spooled ([`digest`]): a copy someone edited teaches nothing.
async fn learn_if_as_sent(
    relay: &Relay,
    rec: &FblRecord,
    att: &FblAttribution,
    tenant: &str,
    original: &str,
) -> Result<(), FblError> {
    let sent = relay.store.message(&att.message_id).await?;
    match sent.and_then(|m| m.body_digest) {
        Some(d) if digest::matches(original.as_bytes(), &d) => {
            learn::learn_spam(relay, tenant, original).await;
        }
        Some(_) => {
            tracing::info!(id = %rec.id, "attached copy differs from the message as sent: not learned");
        }
        None => tracing::info!(id = %rec.id, "no body digest for the message: not learned"),
    }
    Ok(())
}

/// A report by id (`GET /api/v1/fbl/{id}`).
pub async fn get(relay: &Relay, id: &str) -> Result<Option<FblRecord>, FblError> {
    Ok(relay.store.fbl_report(id).await?)
}

/// The raw report as received (`GET /api/v1/fbl/{id}/raw`).
pub async fn raw(relay: &Relay, id: &str) -> Result<Option<Vec<u8>>, FblError> {
    Ok(relay.store.fbl_report_raw(id).await?)
}

/// Reports newest first (`GET /api/v1/fbl`), of one tenant or all, metadata only; untrusted
/// ones only when `with_untrusted` (operators).
pub async fn list(
    relay: &Relay,
    tenant: Option<&str>,
    with_untrusted: bool,
    limit: u32,
) -> Result<Vec<FblRecord>, FblError> {
    Ok(relay
        .store
        .list_fbl_reports_where(tenant, !with_untrusted, limit)
        .await?)
}

/// DATA on the `fbl` listener from `peer`: 250 once stored (malformed and untrusted included),
/// 451 if the store failed.
pub async fn receive_smtp(relay: &Relay, body: &[u8], peer: IpAddr) -> Reply {
    match ingest(relay, body, Source::Smtp(peer)).await {
        Ok(rec) => Reply::new(250, "2.0.0", format!("Ok: report {} recorded", rec.id)),
        Err(e) => {
            tracing::error!(error = %e, "feedback report not stored");
            Reply::new(451, "4.3.0", "Cannot store the report now, try again later")
        }
    }
}
