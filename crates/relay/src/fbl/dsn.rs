//! Inbound DSNs (RFC 3464) on the `fbl` listener and `POST /api/v1/fbl`: remote MTAs that
//! accepted a message and could not deliver it later send an asynchronous bounce. The pure
//! parser is `outguard_proto::dsn_report`; here a DSN is attributed like an ARF report (the
//! returned original's `X-Outguard-Id`, else its Message-ID via the trace), stored with the
//! reports (`feedback_type = "delivery-status"`, flagged when malformed — never lost), and each
//! hard-bounced recipient (`Action: failed`, `Status: 5.x.x`) becomes a `bounced` trace event on
//! the message. The bounce-rate watcher ([`super::bounces`]) counts `bounced` events, so a DSN
//! feeds exactly the judgement and restriction of a 5xx at delivery, on the node that delivered
//! the message. Delays (`4.x.x`, `delayed`) are traced as `dsn` and never counted.

use outguard_store::{FblRecord, Store};
use outguard_types::model::{EventKind, MessageRecord, Millis, TraceEvent};
use serde_json::json;

pub use outguard_proto::dsn_report::{ParsedDsn, is_dsn, parse};

use super::{FblError, attribute};
use crate::server::Relay;

/// The `feedback_type` a stored DSN carries.
pub const FEEDBACK_TYPE: &str = "delivery-status";

/// Parse, attribute and store one DSN (no trace): what every path shares. `trusted_by` as in
/// [`super::record_report`].
pub async fn record_dsn(
    store: &Store,
    raw: &[u8],
    trusted_by: Option<String>,
    now: Millis,
) -> Result<(FblRecord, ParsedDsn), FblError> {
    let parsed = parse(raw);
    let attributed = attribute::attribute_keys(
        store,
        parsed.outguard_id.as_deref(),
        parsed.original_message_id.as_deref(),
    )
    .await?;
    let record = FblRecord {
        id: uuid::Uuid::now_v7().simple().to_string(),
        attributed,
        feedback_type: FEEDBACK_TYPE.into(),
        source_ip: None,
        received_at: now,
        malformed: parsed.malformed.clone(),
        fields: serde_json::to_value(&parsed).unwrap_or_default(),
        trusted: trusted_by.is_some(),
        trusted_by,
        raw: String::new(),
    };
    store.insert_fbl_report(&record, raw).await?;
    if let Some(why) = &record.malformed {
        tracing::warn!(id = %record.id, %why, "malformed DSN stored and flagged");
    }
    Ok((record, parsed))
}

/// A DSN received by the running relay: recorded, and — when trusted — traced on the message
/// it is about (the `bounced` event the bounce-rate watcher counts).
pub async fn ingest(
    relay: &Relay,
    raw: &[u8],
    trusted_by: Option<String>,
) -> Result<FblRecord, FblError> {
    let now = relay.clock.now_ms();
    let (rec, parsed) = record_dsn(&relay.store, raw, trusted_by, now).await?;
    let Some(att) = &rec.attributed else {
        tracing::info!(id = %rec.id, "DSN not attributed to any message");
        return Ok(rec);
    };
    if !rec.trusted {
        tracing::info!(id = %rec.id, "untrusted DSN kept, not counted");
        return Ok(rec);
    }
    let Some(msg) = relay.store.message(&att.message_id).await? else {
        return Ok(rec);
    };
    let ev = dsn_event(&rec, &parsed, &msg);
    relay
        .tracer
        .event(&ev.message_id, ev.kind, ev.detail, ev.data)
        .await;
    Ok(rec)
}

/// The trace event of an attributed DSN about `msg` (see [`trace_event`]).
pub fn dsn_event(rec: &FblRecord, p: &ParsedDsn, msg: &MessageRecord) -> TraceEvent {
    let (kind, detail, data) = trace_event(rec, p, &msg.rcpts);
    TraceEvent {
        message_id: msg.id.clone(),
        at: rec.received_at,
        kind,
        detail,
        data,
    }
}

/// `bounced` with the hard-bounced recipients among the message's own `rcpts` (what the
/// bounce-rate watcher counts), or `dsn` for a DSN that reports no hard bounce of them.
fn trace_event(
    rec: &FblRecord,
    p: &ParsedDsn,
    rcpts: &[String],
) -> (EventKind, String, serde_json::Value) {
    let from = p.reporting_mta.as_deref().unwrap_or("an unnamed MTA");
    let ours = |h: &str| rcpts.iter().any(|r| r.eq_ignore_ascii_case(h));
    let mut hard: Vec<String> = Vec::new();
    let mut strangers = 0usize;
    for h in p.hard_bounces() {
        if !ours(&h) {
            strangers += 1;
        } else if !hard.iter().any(|x| x.eq_ignore_ascii_case(&h)) {
            hard.push(h);
        }
    }
    let statuses: Vec<&str> = p.recipients.iter().map(|r| r.status.as_str()).collect();
    if hard.is_empty() {
        let ignored = format!("{strangers} hard bounces of recipients the message never had");
        let what = p.malformed.as_deref().unwrap_or(if strangers > 0 {
            &ignored
        } else {
            "no hard bounce"
        });
        let detail = format!("DSN {} from {from}: {what}", rec.id);
        let data = json!({"report": rec.id, "source": "dsn", "statuses": statuses});
        return (EventKind::Dsn, detail, data);
    }
    let first = p
        .recipients
        .iter()
        .find(|r| r.hard && r.recipient.as_deref().is_some_and(&ours));
    let why = first
        .and_then(|r| r.diagnostic.clone())
        .unwrap_or_else(|| first.map(|r| r.status.clone()).unwrap_or_default());
    let detail = format!(
        "hard bounce reported by DSN {} from {from}: {} ({why})",
        rec.id,
        hard.join(", ")
    );
    // Each hard-bounced recipient's status: 5.1.x suppresses it for the tenant (issue 25).
    let rcpt_status: serde_json::Map<String, serde_json::Value> = hard
        .iter()
        .map(|h| {
            let st = p
                .recipients
                .iter()
                .find(|r| {
                    r.hard
                        && r.recipient
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(h))
                })
                .map_or("5.0.0", |r| r.status.as_str());
            (h.clone(), json!(st))
        })
        .collect();
    let data = json!({"report": rec.id, "source": "dsn", "rcpts": hard, "statuses": statuses, "rcpt_status": rcpt_status});
    (EventKind::Bounced, detail, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    // The golden files live with the end-to-end tests that feed the same reports to the binary.
    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsn-in")
    }

    /// Golden files: every `NAME.eml` has `NAME.json` with the expected [`ParsedDsn`].
    /// `OUTGUARD_BLESS=1` rewrites the JSON files (review the diff).
    #[test]
    fn golden_fixtures() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures())
            .expect("fixtures dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        assert!(names.len() >= 6, "fixtures missing: {names:?}");
        let bless = std::env::var_os("OUTGUARD_BLESS").is_some();
        for eml in names {
            let raw = std::fs::read(&eml).expect("read fixture");
            assert!(is_dsn(&raw), "{} announces a DSN", eml.display());
            let got = parse(&raw);
            let json = eml.with_extension("json");
            if bless {
                let text = serde_json::to_string_pretty(&got).expect("json") + "\n";
                std::fs::write(&json, text).expect("write golden");
                continue;
            }
            let want: ParsedDsn =
                serde_json::from_slice(&std::fs::read(&json).expect("golden json"))
                    .expect("golden parses");
            assert_eq!(got, want, "{}", eml.display());
        }
    }

    #[test]
    fn arf_reports_are_not_dsns() {
        let arf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arf");
        for f in std::fs::read_dir(arf).expect("arf fixtures").flatten() {
            if f.path().extension().is_some_and(|x| x == "eml") {
                let raw = std::fs::read(f.path()).expect("read");
                assert!(!is_dsn(&raw), "{}", f.path().display());
            }
        }
    }

    #[test]
    fn events_for_hard_and_soft_dsns() {
        let rec = |p: &ParsedDsn| FblRecord {
            id: "r1".into(),
            attributed: None,
            feedback_type: FEEDBACK_TYPE.into(),
            source_ip: None,
            received_at: 0,
            malformed: p.malformed.clone(),
            fields: serde_json::Value::Null,
            trusted: true,
            trusted_by: None,
            raw: String::new(),
        };
        let hard = parse(&std::fs::read(fixtures().join("postfix-full-message.eml")).expect("fx"));
        let had = ["a@dest.example".to_string(), "B@dest.example".to_string()];
        let (kind, detail, data) = trace_event(&rec(&hard), &hard, &had);
        assert_eq!(kind, EventKind::Bounced);
        assert_eq!(data["rcpts"], json!(["a@dest.example", "b@dest.example"]));
        // Each recipient's status, for suppression (issue 25): 5.2.1 does not suppress.
        assert_eq!(data["rcpt_status"]["a@dest.example"], "5.2.1", "{data}");
        assert!(detail.contains("5.2.1 Mailbox disabled"), "{detail}");
        // Recipients the message never had are not bounces of it (a forged DSN may list any).
        let (_, _, data) = trace_event(&rec(&hard), &hard, &had[..1]);
        assert_eq!(data["rcpts"], json!(["a@dest.example"]));
        let (kind, detail, data) = trace_event(&rec(&hard), &hard, &[]);
        assert_eq!(kind, EventKind::Dsn, "{detail}");
        assert!(detail.contains("2 hard bounces of recipients the message never had"));
        assert!(data.get("rcpts").is_none(), "never counted: {data}");
        let soft = parse(&std::fs::read(fixtures().join("delayed-only.eml")).expect("fx"));
        let (kind, _, data) = trace_event(&rec(&soft), &soft, &had);
        assert_eq!(kind, EventKind::Dsn);
        assert!(data.get("rcpts").is_none(), "never counted: {data}");
    }
}
