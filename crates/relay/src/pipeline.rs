//! The message path after DATA, top to bottom (STYLE "The shape"): header checks → scan →
//! policy → spool → queue, each a step with a typed input and output. `accept` answers the
//! SMTP reply for the transaction: `250 … queued as <id>` only after the spool is durable.
//!
//! The header checks come first (SPEC §9): a client's `X-Outguard-*` fields are removed (they
//! can only be forgeries of ours), then the single `From:` field is read from the raw header
//! block and its addresses' ownership checked, so the scan, the spool and the next hop all see
//! the message the checks saw.

use std::borrow::Cow;
use std::net::IpAddr;

use mail_builder::headers::date::Date;
use outguard_proto::from_field::from_addresses;
use outguard_proto::header_fields::strip_own;
use outguard_proto::{ListenerKind, Reply};
use outguard_store::spool::{Envelope, SpoolError, new_message_id};
use outguard_types::model::{EventKind, MessageRecord, MessageState};
use outguard_types::verdict::Verdict;
use serde_json::json;

use crate::server::Relay;
use crate::smtp::checks::SenderKind;
use crate::smtp::identity::{Identity, domain_of};
use outguard_store::trace::TraceRecord;
use outguard_types::time::now_ms;

/// One completed SMTP transaction, as the session and checks left it.
pub struct Submission<'a> {
    pub identity: &'a Identity,
    pub peer: IpAddr,
    pub helo: &'a str,
    pub listener: ListenerKind,
    pub tls: bool,
    pub mail_from: &'a str,
    pub sender: SenderKind,
    pub rcpts: &'a [String],
    /// The numbers the RCPT decisions were made on ("external recipients in last hour: 3 ≤ 500").
    pub policy_measures: &'a [String],
}

/// What the message's own headers say (parsed once, bounded by mail-parser).
#[derive(Debug, Default)]
pub struct HeaderFacts {
    /// The addresses of the one `From:` field (`outguard_proto::from_field`).
    pub from: Vec<String>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// Raw values of the fields the bulk gate reads (`crate::enforce::bulk`), at most 2 KB each.
    pub list_unsubscribe: Option<String>,
    pub list_unsubscribe_post: Option<String>,
    pub precedence: Option<String>,
}

impl HeaderFacts {
    pub fn parse(body: &[u8], from: Vec<String>) -> HeaderFacts {
        let Some(msg) = mail_parser::MessageParser::new().parse_headers(body) else {
            return HeaderFacts {
                from,
                ..HeaderFacts::default()
            };
        };
        HeaderFacts {
            from,
            message_id: msg.message_id().map(str::to_string),
            subject: msg.subject().map(|s| s.chars().take(200).collect()),
            list_unsubscribe: raw(&msg, "List-Unsubscribe"),
            list_unsubscribe_post: raw(&msg, "List-Unsubscribe-Post"),
            precedence: raw(&msg, "Precedence"),
        }
    }
}

/// A header field's raw value, unfolded and trimmed, capped at 2 KB.
fn raw(msg: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    msg.header_raw(name).map(|v| {
        v.chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .take(2048)
            .collect::<String>()
            .trim()
            .to_string()
    })
}

/// The submitted message without any `X-Outguard-*` field (SPEC §9), before anything reads it:
/// only the fields Outguard adds at delivery may carry that name.
fn without_own_headers(body: Vec<u8>) -> Vec<u8> {
    let stripped = match strip_own(&body) {
        Cow::Owned(b) => Some(b),
        Cow::Borrowed(_) => None,
    };
    if stripped.is_some() {
        tracing::info!("removed X-Outguard-* header fields written by the client");
    }
    stripped.unwrap_or(body)
}

/// The `From:` rule (exactly one field, 1–100 addresses: `550 5.6.0`), then ownership of every
/// address (`550 5.7.1`).
async fn check_from(
    relay: &Relay,
    sub: &Submission<'_>,
    body: &[u8],
) -> Result<Vec<String>, Reply> {
    let from = from_addresses(body).map_err(|e| {
        tracing::info!(reason = %e, "malformed From: header");
        e.reply()
    })?;
    relay
        .check_header_from(sub.identity, &sub.sender, &from)
        .await
        .inspect_err(|_| tracing::info!(?from, "From: header not owned by the submitter"))?;
    Ok(from)
}

/// Where policy sends the message (SPEC §2.5).
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    Deliver {
        pool: String,
        extra_headers: Vec<(String, String)>,
        bcc: Vec<String>,
    },
    Quarantine {
        pool: String,
        extra_headers: Vec<(String, String)>,
    },
    Reject(Reply),
}

/// How the message is spooled.
struct Spooling {
    pool: String,
    extra_headers: Vec<(String, String)>,
    bcc: Vec<String>,
    quarantined: bool,
    held: bool,
}

/// A message scanned and decided on, not yet spooled: what our listeners spool and the milter
/// hands back to Postfix.
pub struct Assessed {
    pub id: String,
    /// The message without client-written `X-Outguard-*` fields.
    pub body: Vec<u8>,
    pub verdict: Verdict,
    pub record: MessageRecord,
    pub disposition: Disposition,
    pub hold: bool,
    pub policy_name: String,
    pub measures: Vec<String>,
}

/// Header checks → scan → sender signals → policy (SPEC §2.4), shared by our listeners
/// ([`accept`]) and the Postfix milter. `Err`: refused before a verdict (From: rules, a counter
/// store that failed).
pub async fn assess(relay: &Relay, sub: &Submission<'_>, body: Vec<u8>) -> Result<Assessed, Reply> {
    let body = without_own_headers(body);
    let from = check_from(relay, sub, &body).await?;
    let facts = HeaderFacts::parse(&body, from);
    let id = new_message_id();
    let scanned = relay.scan(sub, &body).await;
    let signalled = relay.sender_signals(sub, &body, scanned).await?;
    let verdict = signalled.verdict;
    relay.metrics.verdict(verdict.class.as_str());
    if let Some(tenant) = sub.identity.tenant() {
        relay.metrics.tenant_message(tenant, verdict.class.as_str());
    }
    let after = relay
        .policy_after_scan(sub, &verdict, signalled.recent_spam.as_ref(), &id)
        .await;
    let after = relay.bulk_gate(sub, &body, &facts, &id, after).await;
    let mut record = message_record(relay, &id, sub, &facts, &verdict, body.len());
    // What a complaint's attached copy must match to train the overlay (SPEC §9).
    record.body_digest = Some(crate::fbl::digest::body_digest(&body));
    let mut measures: Vec<String> = sub.policy_measures.to_vec();
    measures.extend(after.measures);
    Ok(Assessed {
        id,
        body,
        verdict,
        record,
        disposition: after.disposition,
        hold: after.hold,
        policy_name: after.policy_name,
        measures,
    })
}

pub async fn accept(relay: &Relay, sub: Submission<'_>, body: Vec<u8>) -> Reply {
    let a = match assess(relay, &sub, body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Assessed {
        body,
        verdict,
        record,
        disposition,
        hold,
        policy_name,
        measures,
        ..
    } = a;
    let how = match disposition {
        Disposition::Reject(reply) => {
            relay.metrics.message("rejected", "-");
            reject(relay, record, &verdict, &reply, &policy_name, &measures).await;
            return reply;
        }
        Disposition::Deliver {
            pool,
            extra_headers,
            bcc,
        } => Spooling {
            pool,
            extra_headers,
            bcc,
            quarantined: false,
            held: hold,
        },
        Disposition::Quarantine {
            pool,
            extra_headers,
        } => Spooling {
            pool,
            extra_headers,
            bcc: vec![],
            quarantined: true,
            held: hold,
        },
    };
    let disposition = match (how.held, how.quarantined) {
        (true, _) => "held",
        (false, true) => "quarantined",
        (false, false) => "queued",
    };
    relay.metrics.message(disposition, &how.pool);
    queue(
        relay,
        record,
        &sub,
        &verdict,
        body,
        how,
        (&policy_name, &measures),
    )
    .await
}

fn message_record(
    relay: &Relay,
    id: &str,
    sub: &Submission<'_>,
    facts: &HeaderFacts,
    v: &Verdict,
    size: usize,
) -> MessageRecord {
    MessageRecord {
        id: id.to_string(),
        tenant: sub.identity.tenant().map(str::to_string),
        submitter: sub.identity.submitter(),
        mail_from: sub.mail_from.to_string(),
        rcpts: sub.rcpts.to_vec(),
        header_from: facts.from.first().cloned(),
        message_id_header: facts.message_id.clone(),
        subject: facts.subject.clone(),
        size: size as u64,
        received_at: now_ms(),
        state: MessageState::Queued,
        pool: None,
        class: Some(v.class),
        score: Some(v.score),
        node: relay.node.clone(),
        body_digest: None,
    }
}

pub(crate) async fn reject(
    relay: &Relay,
    mut record: MessageRecord,
    v: &Verdict,
    reply: &Reply,
    policy: &str,
    measures: &[String],
) {
    record.state = MessageState::Rejected;
    let id = record.id.clone();
    relay
        .tracer
        .record(TraceRecord::Message(Box::new(record)))
        .await;
    trace_verdict(relay, &id, v).await;
    let detail = format!(
        "policy {policy}: rejected with {reply}; {}",
        measures.join("; ")
    );
    relay
        .tracer
        .event(
            &id,
            EventKind::Policy,
            detail,
            json!({"policy": policy, "reply": reply.to_string(), "measures": measures}),
        )
        .await;
}

pub(crate) async fn trace_verdict(relay: &Relay, id: &str, v: &Verdict) {
    let top: Vec<String> = v
        .reasons
        .iter()
        .take(5)
        .map(|r| format!("{} ({:+.2})", r.tag, r.weight))
        .collect();
    let detail = format!(
        "{} score {:.2}: {}",
        v.class.as_str(),
        v.score,
        top.join(", ")
    );
    relay
        .tracer
        .event(
            id,
            EventKind::Verdict,
            detail,
            serde_json::to_value(v).unwrap_or_default(),
        )
        .await;
}

async fn queue(
    relay: &Relay,
    mut record: MessageRecord,
    sub: &Submission<'_>,
    v: &Verdict,
    body: Vec<u8>,
    how: Spooling,
    (policy, measures): (&str, &[String]),
) -> Reply {
    let id = record.id.clone();
    let Spooling {
        pool,
        extra_headers,
        bcc,
        quarantined,
        held,
    } = how;
    let mut rcpts = sub.rcpts.to_vec();
    rcpts.extend(bcc.iter().cloned());
    let domains = match sub.identity.tenant() {
        Some(t) => relay.enforcer.cache.tenant_domains(&relay.store, t).await,
        None => Vec::new(),
    };
    let (extra_headers, extra_headers_to) = crate::added_headers::verdict_recipients(
        relay.cfg.delivery.verdict_header,
        extra_headers,
        &rcpts,
        &domains,
    );
    // Forwarded mail leaves with its SRS0 sender; the record keeps the original (`crate::srs`).
    let srs_from = relay.srs_sender(sub);
    let env = Envelope {
        id: id.clone(),
        mail_from: srs_from
            .clone()
            .unwrap_or_else(|| sub.mail_from.to_string()),
        rcpts,
        tenant: record.tenant.clone(),
        submitter: record.submitter.clone(),
        pool: pool.clone(),
        received_at: record.received_at,
        class: Some(v.class),
        score: Some(v.score),
        held,
        quarantined,
        extra_headers,
        extra_headers_to,
    };
    let (added, message_id) = crate::added_headers::missing_date_and_id(
        &body,
        &id,
        &relay.cfg.server.hostname,
        now_ms() / 1000,
    );
    if message_id.is_some() {
        record.message_id_header = message_id;
    }
    let stored = with_received_header(relay, sub, &id, &[added.as_bytes(), &body].concat());
    if let Err(e) = relay.spool.accept(&env, &stored).await {
        tracing::error!(%id, error = %e, "spool write failed; message not accepted");
        return spool_error_reply(&e);
    }
    record.pool = Some(pool.clone());
    record.state = match (quarantined, held) {
        (true, _) => MessageState::Quarantined,
        (false, true) => MessageState::Held,
        _ => MessageState::Queued,
    };
    let who = match sub.identity {
        Identity::Account { address, .. } => format!("account {address}"),
        Identity::Connector { cidr, .. } => format!("connector {cidr}"),
        _ => "system".into(),
    };
    relay
        .tracer
        .record(TraceRecord::Message(Box::new(record)))
        .await;
    let received = format!(
        "received from {} [{}] via {} ({who}), {} recipient(s), {} bytes",
        sub.helo,
        sub.peer,
        sub.listener.as_str(),
        sub.rcpts.len(),
        body.len()
    );
    relay.tracer.event(&id, EventKind::Received, received, json!({"peer": sub.peer.to_string(), "helo": sub.helo, "tls": sub.tls, "listener": sub.listener.as_str(), "mail_from": sub.mail_from, "rcpts": sub.rcpts})).await;
    trace_verdict(relay, &id, v).await;
    let detail = format!("policy {policy}: {}", measures.join("; "));
    relay
        .tracer
        .event(
            &id,
            EventKind::Policy,
            detail,
            json!({"policy": policy, "measures": measures, "bcc": bcc}),
        )
        .await;
    let (kind, what) = match (quarantined, held) {
        (true, _) => (EventKind::Quarantined, "quarantined"),
        (false, true) => (
            EventKind::Held,
            "held (the submitter was restricted by this message)",
        ),
        _ => (EventKind::Queued, "queued"),
    };
    let srs_note = srs_from
        .as_deref()
        .map(|a| format!(", envelope sender rewritten by SRS to {a}"))
        .unwrap_or_default();
    relay
        .tracer
        .event(
            &id,
            kind,
            format!("{what} for the {pool} pool{srs_note}"),
            json!({"pool": pool, "srs_from": srs_from}),
        )
        .await;
    crate::fbl::rates::count_sent(relay, sub.identity, sub.rcpts.len(), now_ms()).await;
    relay.queue.enqueue_envelope(env);
    Reply::queued(&id)
}

fn spool_error_reply(e: &SpoolError) -> Reply {
    match e {
        SpoolError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
            Reply::disk_full()
        }
        _ => Reply::local_error(),
    }
}

/// Prepend our `Received:` trace header (RFC 5321 §4.4).
fn with_received_header(relay: &Relay, sub: &Submission<'_>, id: &str, body: &[u8]) -> Vec<u8> {
    let with = match (sub.tls, matches!(sub.identity, Identity::Account { .. })) {
        (true, true) => "ESMTPSA",
        (false, true) => "ESMTPA",
        (true, false) => "ESMTPS",
        (false, false) => "ESMTP",
    };
    prepend_received(relay, sub.helo, sub.peer, with, id, body)
}

/// `body` behind our `Received:` line for a message from `helo` [`peer`].
pub fn prepend_received(
    relay: &Relay,
    helo: &str,
    peer: IpAddr,
    with: &str,
    id: &str,
    body: &[u8],
) -> Vec<u8> {
    let date = Date::new(now_ms() / 1000).to_rfc822();
    let helo: String = helo.chars().filter(|c| c.is_ascii_graphic()).collect();
    // `[privacy] hide_client_ip`: no from-clause at all (the EHLO name of a home machine is as
    // telling as its address); RFC 5322 asks nothing of the tokens before the `;`.
    let from = if relay.cfg.privacy.hide_client_ip {
        String::new()
    } else {
        format!("from {helo} ([{peer}])\r\n\t")
    };
    let h = format!(
        "Received: {from}by {} (Outguard) with {with} id {id};\r\n\t{date}\r\n",
        relay.cfg.server.hostname
    );
    let mut out = Vec::with_capacity(h.len() + body.len());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Reports arriving on the fbl listener: stored, attributed and counted (`crate::fbl`).
pub async fn receive_feedback_report(relay: &Relay, body: &[u8], peer: IpAddr) -> Reply {
    crate::fbl::receive_smtp(relay, body, peer).await
}

/// Registrable-ish sender domain for scan context.
pub fn sender_domain(mail_from: &str) -> Option<&str> {
    domain_of(mail_from)
}

/// The message record of mail Outguard writes itself (notifications).
pub fn system_record(relay: &Relay, env: &Envelope, size: usize, what: &str) -> MessageRecord {
    MessageRecord {
        id: env.id.clone(),
        tenant: env.tenant.clone(),
        submitter: env.submitter.clone(),
        mail_from: env.mail_from.clone(),
        rcpts: env.rcpts.clone(),
        header_from: Some(env.mail_from.clone()),
        message_id_header: None,
        subject: Some(what.to_string()),
        size: size as u64,
        received_at: env.received_at,
        state: MessageState::Queued,
        pool: Some(env.pool.clone()),
        class: None,
        score: None,
        node: relay.node.clone(),
        body_digest: None,
    }
}
