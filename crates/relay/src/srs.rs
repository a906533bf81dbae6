//! SRS at the relay (SPEC §2.5, §9): the envelope sender forwarded mail is spooled with, the RCPT
//! check for our SRS addresses on the `fbl` listener, and the forwarding of a bounce sent to one
//! of them back to the original sender. The address arithmetic is `outguard_proto::srs` (pure);
//! this file only supplies the configured key, the clock and the queue.
//!
//! Decisions:
//! - Every message the sender check called `Forwarded` (a connector relaying a sender domain no
//!   tenant owns) is rewritten, whatever pool its verdict sends it to: a spam-scored forward from
//!   high-risk has the same foreign sender, and its bounces must come back to us as well.
//! - The rewrite happens at spool time, so the spooled envelope is what goes on the wire (and a
//!   DKIM key for the SRS domain signs it); the message record keeps the original sender, and a
//!   trace event names both. Our own DSN about such a message is addressed to the original
//!   sender directly (`delivery::queue`), not through our SRS domain.
//! - Without `[srs]`, forwarded mail keeps today's behaviour (foreign envelope sender): `serve`
//!   and `check-config` warn once (`Config::warnings`). Refusing to start would break every
//!   installation that does not forward, since whether a connector forwards is store data.
//! - A bounce to an SRS address is re-sent with a null reverse-path, from the high-risk pool like
//!   every DSN: it can never bounce again, so SRS cannot loop.

use std::net::IpAddr;

use outguard_proto::Reply;
use outguard_proto::srs::{Srs, SrsError};
use outguard_store::spool::{Envelope, new_message_id};
use outguard_types::model::{EventKind, Submitter};
use serde_json::json;

use crate::pipeline::Submission;
use crate::server::Relay;
use crate::smtp::checks::SenderKind;
use outguard_store::trace::TraceRecord;
use outguard_types::time::now_ms;

/// The pool reversed bounces leave from (every DSN does, SPEC §2.7).
const BOUNCE_POOL: &str = "high-risk";

fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

/// The refusal of an SRS recipient we cannot reverse (SPEC §9: `550 5.1.1`).
pub fn invalid_address(e: &SrsError) -> Reply {
    let why = match e {
        SrsError::BadHash => "hash does not match",
        SrsError::Expired { .. } => "expired",
        SrsError::Malformed(_) => "malformed",
    };
    Reply::new(550, "5.1.1", format!("Invalid SRS address: {why}"))
}

/// Whether the local part is tagged as SRS (`SRS0=`/`SRS1=`, any case).
fn tagged(addr: &str) -> bool {
    let local = addr.rsplit_once('@').map_or(addr, |(l, _)| l);
    local
        .get(..5)
        .is_some_and(|t| t[..4].eq_ignore_ascii_case("SRS0") || t[..4].eq_ignore_ascii_case("SRS1"))
}

impl Relay {
    /// The configured rewriter, `None` without `[srs]`.
    pub fn srs(&self) -> Option<Srs> {
        self.cfg
            .srs
            .as_ref()
            .map(|c| Srs::new(c.secret.as_bytes(), &c.domain, c.max_age_days()))
    }

    /// The envelope sender to spool `sub` with: its SRS0 form when it is forwarded mail and
    /// `[srs]` is configured, else `None` (unchanged).
    pub fn srs_sender(&self, sub: &Submission<'_>) -> Option<String> {
        if sub.sender != SenderKind::Forwarded || sub.mail_from.is_empty() {
            return None;
        }
        let srs = self.srs()?;
        match srs.forward(sub.mail_from, now_secs()) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(sender = %sub.mail_from, error = %e, "forwarded sender cannot be SRS-rewritten; sent unchanged");
                None
            }
        }
    }

    /// A recipient the `fbl` listener treats as a bounce to one of our SRS addresses: in the SRS
    /// domain, and tagged `SRS0`/`SRS1` when that domain also receives feedback reports.
    pub fn is_srs_rcpt(&self, to: &str) -> bool {
        let Some(srs) = self.srs() else {
            return false;
        };
        if !srs.is_ours(to) {
            return false;
        }
        let fbl_too = self
            .cfg
            .fbl
            .domains
            .iter()
            .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(srs.domain()));
        !fbl_too || tagged(to)
    }

    /// RCPT of an SRS recipient: its hash and age hold, else `550 5.1.1`.
    pub fn check_srs_rcpt(&self, to: &str) -> Result<(), Reply> {
        let Some(srs) = self.srs() else {
            return Err(invalid_address(&SrsError::Malformed("no [srs]")));
        };
        match srs.reverse(to, now_secs()) {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::info!(rcpt = %to, error = %e, "SRS recipient refused");
                Err(invalid_address(&e))
            }
        }
    }
}

/// DATA on the `fbl` listener for SRS recipients: the bounce is spooled anew, null sender,
/// high-risk pool, to the original senders the recipients reverse to.
pub async fn forward_bounce(
    relay: &Relay,
    peer: IpAddr,
    helo: &str,
    rcpts: &[&String],
    body: &[u8],
) -> Reply {
    let Some(srs) = relay.srs() else {
        return Reply::local_error();
    };
    let now = now_secs();
    let mut originals: Vec<String> = Vec::new();
    let mut refused = None;
    for r in rcpts {
        // Checked at RCPT; an address that expired since is dropped, not delivered.
        match srs.reverse(r, now) {
            Ok(o) if !originals.iter().any(|x| x.eq_ignore_ascii_case(&o)) => originals.push(o),
            Ok(_) => {}
            Err(e) => refused = Some(e),
        }
    }
    if originals.is_empty() {
        return invalid_address(&refused.unwrap_or(SrsError::Malformed("no SRS recipient")));
    }
    let id = new_message_id();
    let env = Envelope {
        id: id.clone(),
        mail_from: String::new(),
        rcpts: originals.clone(),
        tenant: None,
        submitter: Submitter::System,
        pool: BOUNCE_POOL.into(),
        received_at: now_ms(),
        class: None,
        score: None,
        held: false,
        quarantined: false,
        extra_headers: vec![],
        extra_headers_to: None,
    };
    let stored = crate::pipeline::prepend_received(relay, helo, peer, "ESMTP", &id, body);
    if let Err(e) = relay.spool.accept(&env, &stored).await {
        tracing::error!(%id, error = %e, "spool write failed; SRS bounce not accepted");
        return Reply::local_error();
    }
    let rec = crate::pipeline::system_record(relay, &env, stored.len(), "SRS bounce");
    relay
        .tracer
        .record(TraceRecord::Message(Box::new(rec)))
        .await;
    let srs_rcpts: Vec<&str> = rcpts.iter().map(|s| s.as_str()).collect();
    relay
        .tracer
        .event(
            &id,
            EventKind::Received,
            format!(
                "bounce from [{peer}] to {} reversed by SRS to {}",
                srs_rcpts.join(", "),
                originals.join(", ")
            ),
            json!({"peer": peer.to_string(), "helo": helo, "listener": "fbl",
                   "srs_rcpts": srs_rcpts, "rcpts": originals}),
        )
        .await;
    relay
        .tracer
        .event(
            &id,
            EventKind::Queued,
            format!("queued for the {BOUNCE_POOL} pool with a null sender"),
            json!({"pool": BOUNCE_POOL}),
        )
        .await;
    relay.queue.enqueue_envelope(env);
    Reply::queued(&id)
}
