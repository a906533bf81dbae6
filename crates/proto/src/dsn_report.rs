//! Inbound DSNs (RFC 3464): the asynchronous bounces a remote MTA sends after it accepted a
//! message, as `multipart/report; report-type=delivery-status`. [`is_dsn`] tells them from ARF
//! reports on the `fbl` listener; [`parse`] reads the per-recipient fields (`Final-Recipient`,
//! `Action`, `Status`, `Diagnostic-Code`) and the attribution keys of the returned original
//! (`message/rfc822`, `text/rfc822-headers`, or their RFC 6533 `global` forms): our
//! `X-Outguard-Id`, else its `Message-ID`, else a plausible `Original-Envelope-Id`.
//!
//! A hard bounce is `Action: failed` with a `5.x.x` status; `delayed`, `delivered`, `relayed`,
//! `expanded` and `4.x.x` are not. Never fails, never panics: a DSN that does not hold a
//! readable delivery-status part comes back with `malformed` saying why, so it is kept and
//! flagged like a malformed ARF report.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

use crate::arf::plausible_id;

/// Most recipients kept from one DSN (a hostile one may list thousands).
pub const MAX_RECIPIENTS: usize = 1000;

/// One per-recipient block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnRecipientReport {
    /// `Final-Recipient` address (the `rfc822;` type stripped).
    pub recipient: Option<String>,
    pub original_recipient: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded` (lowercased).
    pub action: String,
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: String,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    /// `failed` with a 5.x.x status.
    pub hard: bool,
}

/// What a DSN says, as stored and as the golden fixtures spell it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedDsn {
    /// Why the DSN is malformed (None: it parsed).
    pub malformed: Option<String>,
    pub reporting_mta: Option<String>,
    pub original_envelope_id: Option<String>,
    pub recipients: Vec<DsnRecipientReport>,
    /// `message` (full original), `headers` (its headers only) or `none`.
    pub original: String,
    /// `X-Outguard-Id` of the original.
    pub outguard_id: Option<String>,
    /// `Message-ID` of the original (without `<>`).
    pub original_message_id: Option<String>,
}

impl ParsedDsn {
    /// The hard-bounced recipients (addresses; `unknown` when the block named none).
    pub fn hard_bounces(&self) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|r| r.hard)
            .map(|r| r.recipient.clone().unwrap_or_else(|| "unknown".into()))
            .collect()
    }
}

fn is_report_type(v: Option<&str>) -> bool {
    v.is_some_and(|t| {
        let t = t.trim().to_ascii_lowercase();
        t == "delivery-status" || t == "global-delivery-status"
    })
}

/// Whether `raw` announces itself as a DSN: top-level `multipart/report` with
/// `report-type=delivery-status` (or `global-delivery-status`).
pub fn is_dsn(raw: &[u8]) -> bool {
    let Some(msg) = MessageParser::new().parse_headers(raw) else {
        return false;
    };
    msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && is_report_type(ct.attribute("report-type"))
    })
}

fn malformed(why: &str) -> ParsedDsn {
    ParsedDsn {
        malformed: Some(why.into()),
        original: "none".into(),
        ..ParsedDsn::default()
    }
}

/// Parse a DSN. Never panics, never fails.
pub fn parse(raw: &[u8]) -> ParsedDsn {
    let Some(msg) = MessageParser::new().parse(raw) else {
        return malformed("not a message");
    };
    let mut status_text: Option<String> = None;
    let (mut original, mut keys) = ("none", (None, None));
    for part in msg.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let (ctype, sub) = (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        );
        match (ctype.as_str(), sub.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") if status_text.is_none() => {
                status_text = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "rfc822" | "global") if original == "none" => {
                if let PartType::Message(m) = &part.body {
                    original = "message";
                    keys = keys_of(m.raw_message());
                }
            }
            ("text", "rfc822-headers") | ("message", "global-headers") if original == "none" => {
                original = "headers";
                keys = keys_of(part.contents());
            }
            _ => {}
        }
    }
    let Some(text) = status_text else {
        let mut p = malformed("no message/delivery-status part");
        (p.outguard_id, p.original_message_id) = keys;
        p.original = original.into();
        return p;
    };
    let mut blocks = field_blocks(&text).into_iter();
    let per_message = blocks.next().unwrap_or_default();
    let recipients: Vec<DsnRecipientReport> = blocks
        .filter(|b| !b.is_empty())
        .take(MAX_RECIPIENTS)
        .map(|b| recipient(&b))
        .collect();
    let get = |name: &str| field(&per_message, name);
    let envid = get("original-envelope-id");
    let mut p = ParsedDsn {
        malformed: None,
        reporting_mta: get("reporting-mta").map(|v| typed_value(&v)),
        outguard_id: keys.0.or_else(|| envid.as_deref().and_then(plausible_id)),
        original_envelope_id: envid,
        recipients,
        original: original.into(),
        original_message_id: keys.1,
    };
    if p.recipients.is_empty() {
        p.malformed = Some("no per-recipient fields in the delivery-status part".into());
    } else if let Some(r) = p
        .recipients
        .iter()
        .find(|r| r.action.is_empty() || r.status.is_empty())
    {
        let who = r.recipient.as_deref().unwrap_or("a recipient");
        p.malformed = Some(format!("{who}: Action or Status missing"));
    }
    if p.malformed.is_some() {
        // A block we cannot read is not a hard bounce we can trust.
        p.recipients.iter_mut().for_each(|r| r.hard = false);
    }
    p
}

fn recipient(block: &[(String, String)]) -> DsnRecipientReport {
    let action = field(block, "action")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let status = field(block, "status")
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .filter(|s| valid_status(s))
        .unwrap_or_default();
    DsnRecipientReport {
        hard: action == "failed" && status.starts_with("5."),
        recipient: field(block, "final-recipient").map(|v| typed_value(&v)),
        original_recipient: field(block, "original-recipient").map(|v| typed_value(&v)),
        diagnostic: field(block, "diagnostic-code").map(|v| typed_value(&v)),
        remote_mta: field(block, "remote-mta").map(|v| typed_value(&v)),
        action,
        status,
    }
}

/// RFC 3463 `class.subject.detail`: class 2, 4 or 5, then 1–3 and 1–3 digits.
fn valid_status(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
}

/// `rfc822; bob@example.net` → `bob@example.net` (the address-type prefix dropped).
fn typed_value(v: &str) -> String {
    let v = v.split_once(';').map_or(v, |(_, rest)| rest).trim();
    v.trim_start_matches('<').trim_end_matches('>').to_string()
}

/// The first value of `name` (case-insensitive) in a block, trimmed, at most 500 characters.
fn field(block: &[(String, String)], name: &str) -> Option<String> {
    block
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().chars().take(500).collect::<String>())
        .filter(|v| !v.is_empty())
}

/// The delivery-status body as blocks of (name, value) fields separated by blank lines, with
/// folded lines unfolded. Lines that are not fields are skipped.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines().take(20_000) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if blocks.last().is_some_and(|b| !b.is_empty()) {
                blocks.push(Vec::new());
            }
            continue;
        }
        let Some(cur) = blocks.last_mut() else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if !k.is_empty() && !k.contains(' ') {
                cur.push((k.to_string(), v.trim().to_string()));
            }
        }
    }
    blocks
}

/// `X-Outguard-Id` and `Message-ID` of the returned original or its headers.
fn keys_of(text: &[u8]) -> (Option<String>, Option<String>) {
    let Some(msg) = MessageParser::new().parse_headers(text) else {
        return (None, None);
    };
    // The first `X-Outguard-Id` is the one we prepended (mail-parser would give the last).
    let id = crate::header_fields::first_value(text, "X-Outguard-Id").and_then(plausible_id);
    let mid = msg
        .message_id()
        .map(|s| {
            s.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
        })
        .filter(|s| !s.is_empty() && s.len() <= 500)
        .map(str::to_string);
    (id, mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_input_never_panics() {
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n--x\r\n",
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n\r\n\r\n:\r\n \r\n--x--\r\n",
            &[0xff; 300][..],
        ] {
            let p = parse(raw);
            assert!(p.malformed.is_some(), "{p:?}");
            assert!(p.hard_bounces().is_empty());
        }
    }

    /// The returned original carries our `X-Outguard-Id` first and a forged one later: the
    /// bounce is about ours.
    #[test]
    fn the_first_outguard_id_is_ours() {
        let raw = "From: MAILER-DAEMON@mx.example\r\nTo: a@b.example\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n\
Final-Recipient: rfc822; x@dest.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nX-Outguard-Id: ours-1\r\nFrom: carol@b.example\r\n\
X-Outguard-Id: victims-2\r\n\r\n--b--\r\n";
        let p = parse(raw.as_bytes());
        assert_eq!(p.malformed, None);
        assert_eq!(p.outguard_id.as_deref(), Some("ours-1"));
    }

    #[test]
    fn statuses_and_detection() {
        for (s, ok) in [
            ("5.1.1", true),
            ("4.4.7", true),
            ("5.7.510", true),
            ("2.0.0", true),
            ("6.1.1", false),
            ("5.1", false),
            ("5.x.1", false),
            ("", false),
        ] {
            assert_eq!(valid_status(s), ok, "{s}");
        }
        assert!(is_dsn(
            b"Content-Type: multipart/report; report-type=\"Delivery-Status\"; boundary=b\r\n\r\n"
        ));
        assert!(!is_dsn(
            b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n"
        ));
        assert!(!is_dsn(b"Subject: hi\r\n\r\nbody\r\n"));
        assert_eq!(typed_value("rfc822; <bob@x.example>"), "bob@x.example");
        assert_eq!(typed_value("dns; mx.x.example"), "mx.x.example");
    }
}
