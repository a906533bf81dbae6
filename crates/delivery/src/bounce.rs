//! Turning permanent failures into a DSN message (SPEC §2.7): the DSN is a new spooled message
//! with an empty envelope sender, addressed to the original envelope sender, and it always
//! leaves from the `high-risk` pool. No DSN is made for a message whose own sender was empty
//! (a DSN about a DSN would start a bounce loop).

use outguard_proto::dsn::{DsnAction, DsnInput, DsnRecipient, build_dsn, split_headers};
use outguard_store::spool::{Envelope, RcptState, new_message_id};
use outguard_types::model::Submitter;

/// The pool every DSN leaves from.
pub const DSN_POOL: &str = "high-risk";

/// RFC 3463 status from a reply text like `550 5.1.1 No such user`, else from its class.
pub fn status_of(reply: &str) -> String {
    let mut words = reply.split_whitespace();
    let code = words.next().unwrap_or("");
    if let Some(esc) = words.next() {
        let parts: Vec<&str> = esc.split('.').collect();
        let numeric = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if numeric && matches!(parts[0], "2" | "4" | "5") {
            return esc.to_string();
        }
    }
    match code.as_bytes().first() {
        Some(b'4') => "4.0.0".into(),
        _ => "5.0.0".into(),
    }
}

/// A DSN for `failed` recipients of `env`, or `None` when the sender was empty.
pub fn make_dsn(
    hostname: &str,
    env: &Envelope,
    failed: &[(String, RcptState)],
    original: &[u8],
    now: i64,
) -> Option<(Envelope, Vec<u8>)> {
    if env.mail_from.is_empty() || failed.is_empty() {
        return None;
    }
    let id = new_message_id();
    let recipients = failed
        .iter()
        .map(|(rcpt, st)| {
            let diagnostic = st.reply.clone();
            DsnRecipient {
                address: rcpt.clone(),
                action: DsnAction::Failed,
                status: diagnostic
                    .as_deref()
                    .map(status_of)
                    .unwrap_or_else(|| "5.0.0".into()),
                remote_mta: st.remote.clone(),
                diagnostic,
                last_attempt: Some(now),
            }
        })
        .collect();
    let input = DsnInput {
        reporting_mta: hostname.to_string(),
        envelope_id: env.id.clone(),
        arrival_date: env.received_at,
        date: now,
        original_sender: env.mail_from.clone(),
        dsn_id: id.clone(),
        recipients,
        original_headers: split_headers(original).to_vec(),
    };
    let body = build_dsn(&input);
    let dsn = Envelope {
        id,
        mail_from: String::new(),
        rcpts: vec![env.mail_from.clone()],
        tenant: env.tenant.clone(),
        submitter: Submitter::System,
        pool: DSN_POOL.to_string(),
        received_at: now,
        class: None,
        score: None,
        held: false,
        quarantined: false,
        extra_headers: Vec::new(),
        extra_headers_to: None,
    };
    Some((dsn, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_vectors() {
        for (reply, want) in [
            ("550 5.1.1 No such user", "5.1.1"),
            ("550 No such user", "5.0.0"),
            ("451 4.3.0 later", "4.3.0"),
            ("421 try later", "4.0.0"),
            ("5.1.2 domain not found", "5.0.0"),
            ("", "5.0.0"),
            ("550 9.9.9 odd", "5.0.0"),
        ] {
            assert_eq!(status_of(reply), want, "{reply}");
        }
    }

    #[test]
    fn no_dsn_for_empty_sender() {
        let env = Envelope {
            id: "a1".into(),
            mail_from: String::new(),
            rcpts: vec!["x@y.test".into()],
            tenant: None,
            submitter: Submitter::System,
            pool: "high-risk".into(),
            received_at: 0,
            class: None,
            score: None,
            held: false,
            quarantined: false,
            extra_headers: vec![],
            extra_headers_to: None,
        };
        let st = RcptState {
            status: outguard_store::spool::RcptStatus::Failed,
            reply: None,
            remote: None,
        };
        assert!(make_dsn("h", &env, &[("x@y.test".into(), st)], b"", 0).is_none());
    }
}
