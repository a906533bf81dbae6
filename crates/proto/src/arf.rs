//! ARF (RFC 5965) feedback reports → the fields we keep, with mail-auth's parser (`Feedback`). Never
//! fails: a report that does not parse comes back with `feedback_type = "unknown"` and
//! `malformed` saying why, so it is stored and flagged rather than lost. The embedded original
//! (`message/rfc822`, or `text/rfc822-headers`) gives the attribution keys: our
//! `X-Outguard-Id` header (the first one: we prepend it, so a later one is a forgery — see
//! `header_fields::first_value`), else its `Message-ID`. For a report mail-auth cannot parse, the
//! keys are still looked for in the raw text, so an operator can see whose mail it was about.

use mail_auth::report::{Feedback, FeedbackType};
use serde::{Deserialize, Serialize};

/// What a report says, as stored and as the golden fixtures spell it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedReport {
    pub feedback_type: String,
    /// Why the report is malformed (None: it parsed as ARF).
    pub malformed: Option<String>,
    pub user_agent: Option<String>,
    pub version: Option<u32>,
    pub source_ip: Option<String>,
    /// Unix seconds.
    pub arrival_date: Option<i64>,
    pub original_mail_from: Option<String>,
    pub original_rcpt_to: Option<String>,
    pub reporting_mta: Option<String>,
    pub reported_domain: Vec<String>,
    pub incidents: u32,
    /// `message` (full original), `headers` (its headers only) or `none`.
    pub original: String,
    /// `X-Outguard-Id` of the original.
    pub outguard_id: Option<String>,
    /// `Message-ID` of the original (without `<>`).
    pub original_message_id: Option<String>,
    /// The full original message (for spam training), not part of the golden output.
    #[serde(skip)]
    pub original_message: Option<String>,
}

impl ParsedReport {
    /// Counts towards complaint rates: `abuse`, `fraud` and `virus` (`not-spam` is the opposite
    /// signal, `auth-failure` and `other` are not user complaints).
    pub fn is_complaint(&self) -> bool {
        self.malformed.is_none()
            && matches!(self.feedback_type.as_str(), "abuse" | "fraud" | "virus")
    }
}

pub fn feedback_type_name(t: FeedbackType) -> &'static str {
    match t {
        FeedbackType::Abuse => "abuse",
        FeedbackType::AuthFailure => "auth-failure",
        FeedbackType::Fraud => "fraud",
        FeedbackType::NotSpam => "not-spam",
        FeedbackType::Other => "other",
        FeedbackType::Virus => "virus",
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(|s| s.trim().chars().take(500).collect())
        .filter(|s: &String| !s.is_empty())
}

/// Parse a report. Never panics, never fails.
///
/// mail-parser 0.11 has a `debug_assert!` on one corrupt nesting of `message/rfc822` inside a
/// multipart (found by the `arf` fuzz target); release builds recover from it, debug builds
/// panic. A panic in the parser is caught here and the report stored as malformed, so a hostile
/// report can never take the fbl listener's task down in any build.
pub fn parse(raw: &[u8]) -> ParsedReport {
    match std::panic::catch_unwind(|| parse_unguarded(raw)) {
        Ok(report) => report,
        Err(_) => {
            let (outguard_id, original_message_id) = keys_in_raw(raw);
            ParsedReport {
                feedback_type: "unknown".into(),
                malformed: Some("not an ARF report: its MIME structure is corrupt".into()),
                original: "none".into(),
                outguard_id,
                original_message_id,
                ..ParsedReport::default()
            }
        }
    }
}

fn parse_unguarded(raw: &[u8]) -> ParsedReport {
    match Feedback::parse_rfc5322(raw) {
        Ok(f) => from_feedback(&f),
        Err(e) => {
            let (outguard_id, original_message_id) = keys_in_raw(raw);
            ParsedReport {
                feedback_type: "unknown".into(),
                malformed: Some(format!("not an ARF report: {e:?}")),
                original: "none".into(),
                outguard_id,
                original_message_id,
                ..ParsedReport::default()
            }
        }
    }
}

fn from_feedback(f: &Feedback<'_>) -> ParsedReport {
    let (original, text) = match (f.message(), f.headers()) {
        (Some(m), _) if !m.trim().is_empty() => ("message", Some(m)),
        (_, Some(h)) if !h.trim().is_empty() => ("headers", Some(h)),
        _ => ("none", None),
    };
    let (outguard_id, original_message_id) = text
        .map(|t| keys_in_headers(t.as_bytes()))
        .unwrap_or_default();
    ParsedReport {
        feedback_type: feedback_type_name(f.feedback_type()).into(),
        malformed: None,
        user_agent: owned(f.user_agent()),
        version: Some(f.version()).filter(|v| *v != 0),
        source_ip: f.source_ip().map(|ip| ip.to_string()),
        arrival_date: f.arrival_date(),
        original_mail_from: owned(f.original_mail_from()),
        original_rcpt_to: owned(f.original_rcpt_to()),
        reporting_mta: owned(f.reporting_mta()),
        reported_domain: f
            .reported_domain()
            .iter()
            .take(20)
            .map(|d| d.to_string())
            .collect(),
        incidents: f.incidents(),
        original: original.into(),
        outguard_id,
        original_message_id,
        original_message: (original == "message").then(|| text.unwrap_or_default().to_string()),
    }
}

/// A message id as we issue it: letters, digits, `-`, `_`, `.` (anything else is not ours).
pub fn plausible_id(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    ok.then(|| s.to_string())
}

fn bare_message_id(s: &str) -> Option<String> {
    let s = s
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!s.is_empty() && s.len() <= 500).then(|| s.to_string())
}

/// `X-Outguard-Id` and `Message-ID` of an original message or its headers.
fn keys_in_headers(text: &[u8]) -> (Option<String>, Option<String>) {
    let Some(msg) = mail_parser::MessageParser::new().parse_headers(text) else {
        return (None, None);
    };
    // The first `X-Outguard-Id` is the one we prepended (mail-parser would give the last).
    let id = crate::header_fields::first_value(text, "X-Outguard-Id").and_then(plausible_id);
    let mid = msg.message_id().and_then(bare_message_id);
    (id, mid)
}

/// Header lines in the body of a report that does not parse (last resort): the report's own
/// header block is skipped, so its `Message-ID` is never taken for the original's.
fn keys_in_raw(raw: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(raw);
    let body = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .map_or("", |(_, b)| b);
    let field = |name: &str| {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    };
    let id = field("X-Outguard-Id").as_deref().and_then(plausible_id);
    let mid = field("Message-ID").as_deref().and_then(bare_message_id);
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
            b"Content-Type: multipart/report; boundary=\"x\"\r\n\r\n--x\r\n",
            &[0xff; 300][..],
        ] {
            let p = parse(raw);
            assert!(p.malformed.is_some());
            assert!(!p.is_complaint());
        }
        assert_eq!(plausible_id("abc-12_3.x"), Some("abc-12_3.x".into()));
        assert_eq!(plausible_id("a b"), None);
    }

    /// The attached copy carries our `X-Outguard-Id` first (we prepend it) and a forged one
    /// further down: the report is about ours, whether the whole message or only its headers
    /// came back.
    #[test]
    fn the_first_outguard_id_is_ours() {
        let copy = "X-Outguard-Id: ours-1\r\nReceived: from x\r\nFrom: carol@b.example\r\n\
X-Outguard-Id: victims-2\r\nMessage-ID: <m@b.example>\r\n\r\nbuy now\r\n";
        for ctype in ["message/rfc822", "text/rfc822-headers"] {
            let raw = format!(
                "From: fbl@isp.example\r\nTo: fbl@fbl.example\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\ncomplaint\r\n\
--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: t/1\r\nVersion: 1\r\n\r\n\
--b\r\nContent-Type: {ctype}\r\n\r\n{copy}\r\n--b--\r\n"
            );
            let p = parse(raw.as_bytes());
            assert_eq!(p.malformed, None, "{ctype}");
            assert_eq!(p.outguard_id.as_deref(), Some("ours-1"), "{ctype}");
        }
    }

    /// Fuzz find (`arf`): a yahoo-style report whose nested `message/rfc822` parts lost a
    /// boundary line trips mail-parser's `debug_assert!` ("Invalid part ID"). It must come back
    /// as a report (malformed or not), never a panic, in a debug build too.
    #[test]
    fn corrupt_nested_rfc822_does_not_panic() {
        let raw = include_bytes!("../tests/fixtures/arf/crash-nested-rfc822.eml");
        let p = parse(raw);
        assert!(matches!(
            p.original.as_str(),
            "message" | "headers" | "none"
        ));
        if p.malformed.is_some() {
            assert!(!p.is_complaint());
        }
    }
}
