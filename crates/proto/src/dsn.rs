//! Delivery Status Notifications (RFC 3464): a `multipart/report; report-type=delivery-status`
//! with a human-readable part, the machine-readable `message/delivery-status` fields, and the
//! original message's headers (`text/rfc822-headers`).
//!
//! No maintained crate writes the delivery-status fields, so they are written here and wrapped
//! with mail-builder (as Stalwart does). Everything that varies is an input — the date, the
//! DSN's own Message-ID and the MIME boundary are derived from [`DsnInput`] — so the output is
//! byte-for-byte reproducible (golden fixture in `tests/fixtures/dsn`).
//!
//! The caller sends the DSN with an empty envelope sender (`MAIL FROM:<>`), which is what stops
//! bounce loops: a DSN is never sent for a message whose sender was empty.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    /// Permanent failure or expiry: the message will not be delivered.
    Failed,
    /// Still trying (warning DSN).
    Delayed,
}

impl DsnAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    pub address: String,
    pub action: DsnAction,
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: String,
    /// Host name (or address) of the remote MTA that gave the reply, if any.
    pub remote_mta: Option<String>,
    /// The remote reply (`550 5.1.1 No such user`) or our own reason.
    pub diagnostic: Option<String>,
    /// Unix milliseconds of the last attempt.
    pub last_attempt: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnInput {
    /// Our host name: `Reporting-MTA` and the `MAILER-DAEMON@` address.
    pub reporting_mta: String,
    /// The original message's id (`Original-Envelope-Id`, `X-Outguard-Id`).
    pub envelope_id: String,
    /// Unix milliseconds when the original arrived.
    pub arrival_date: i64,
    /// Unix milliseconds of the DSN itself.
    pub date: i64,
    /// The original envelope sender; the DSN goes to it.
    pub original_sender: String,
    /// Id for the DSN's own Message-ID (its spool id).
    pub dsn_id: String,
    pub recipients: Vec<DsnRecipient>,
    /// The original message's header block (up to the blank line).
    pub original_headers: Vec<u8>,
}

fn rfc822_date(ms: i64) -> String {
    Date::new(ms.div_euclid(1000)).to_rfc822()
}

/// Keep header-field values on one line and free of control characters.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// One `Name: value` field of the delivery-status part, 7-bit and folded at spaces so that no
/// line passes 78 characters (RFC 3464 §2.1: the part is 7bit, long values are folded as header
/// fields are; a transfer encoding would cut `Diagnostic-Code` for parsers that do not decode it).
fn field(out: &mut String, name: &str, value: &str) {
    let value: String = clean(value)
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let mut line_len = name.len() + 1;
    out.push_str(name);
    out.push(':');
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if line_len + 1 + word.len() > 78 && line_len > name.len() + 1 {
            out.push_str("\r\n ");
            line_len = 1;
        } else {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out.push_str("\r\n");
}

/// The `message/delivery-status` body: per-message fields, then one block per recipient.
pub fn delivery_status_fields(input: &DsnInput) -> String {
    let mut out = String::new();
    field(
        &mut out,
        "Reporting-MTA",
        &format!("dns; {}", input.reporting_mta),
    );
    field(&mut out, "Original-Envelope-Id", &input.envelope_id);
    field(&mut out, "Arrival-Date", &rfc822_date(input.arrival_date));
    for r in &input.recipients {
        out.push_str("\r\n");
        field(
            &mut out,
            "Final-Recipient",
            &format!("rfc822; {}", r.address),
        );
        field(&mut out, "Action", r.action.as_str());
        field(&mut out, "Status", &r.status);
        if let Some(mta) = &r.remote_mta {
            field(&mut out, "Remote-MTA", &format!("dns; {mta}"));
        }
        if let Some(diag) = &r.diagnostic {
            field(&mut out, "Diagnostic-Code", &format!("smtp; {diag}"));
        }
        if let Some(at) = r.last_attempt {
            field(&mut out, "Last-Attempt-Date", &rfc822_date(at));
        }
    }
    out
}

fn human_text(input: &DsnInput) -> String {
    let failed: Vec<&DsnRecipient> = input
        .recipients
        .iter()
        .filter(|r| r.action == DsnAction::Failed)
        .collect();
    let mut out = format!(
        "This is the mail system at host {}.\r\n\r\n",
        clean(&input.reporting_mta)
    );
    if failed.is_empty() {
        out.push_str(
            "Your message has not been delivered yet. The mail system will keep trying.\r\n",
        );
    } else {
        out.push_str(
            "I'm sorry to have to inform you that your message could not\r\n\
             be delivered to one or more recipients. The details are below.\r\n",
        );
    }
    out.push_str("\r\n");
    for r in &input.recipients {
        let why = r
            .diagnostic
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| format!("status {}", clean(&r.status)));
        let host = r
            .remote_mta
            .as_deref()
            .map(|h| format!(" (host {})", clean(h)))
            .unwrap_or_default();
        out.push_str(&format!(
            "<{}>{}:\r\n    {}\r\n",
            clean(&r.address),
            host,
            why
        ));
    }
    out
}

/// The original header block, with line endings normalised to CRLF.
fn header_block(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        // A CR inside a line would go out as a bare CR (fuzz find: `dsn`): never send one.
        out.push_str(&line.replace('\r', " "));
        out.push_str("\r\n");
    }
    out
}

/// The header part of a message: everything up to the first empty line.
pub fn split_headers(message: &[u8]) -> &[u8] {
    let crlf = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2);
    let lf = message.windows(2).position(|w| w == b"\n\n").map(|p| p + 1);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(message.len()),
    };
    message.get(..end).unwrap_or(message)
}

/// Build the whole DSN message (headers and body, CRLF line endings).
pub fn build_dsn(input: &DsnInput) -> Vec<u8> {
    let failed = input
        .recipients
        .iter()
        .any(|r| r.action == DsnAction::Failed);
    let subject = if failed {
        "Undelivered Mail Returned to Sender"
    } else {
        "Delayed Mail (still being retried)"
    };
    let host = clean(&input.reporting_mta);
    let (human, status, headers) = (
        human_text(input),
        delivery_status_fields(input),
        header_block(&input.original_headers),
    );
    // The boundary must not occur in any part: remote replies and the original's headers are
    // not ours, and a lenient parser splits on it even mid-line (fuzz find: `dsn`).
    let mut boundary = format!("dsn-{}", clean(&input.dsn_id));
    let base_len = boundary.len();
    for n in 1u32.. {
        if ![&human, &status, &headers]
            .iter()
            .any(|p| p.contains(&boundary))
        {
            break;
        }
        boundary.truncate(base_len);
        boundary.push_str(&format!("-{n}"));
    }
    let parts = vec![
        MimePart::new(
            ContentType::new("text/plain").attribute("charset", "us-ascii"),
            human,
        )
        .header("Content-Description", Raw::new("Notification")),
        MimePart::new(ContentType::new("message/delivery-status"), status)
            .header("Content-Description", Raw::new("Delivery report"))
            .transfer_encoding("7bit"),
        MimePart::new(ContentType::new("text/rfc822-headers"), headers).header(
            "Content-Description",
            Raw::new("Undelivered Message Headers"),
        ),
    ];
    let report = ContentType::new("multipart/report")
        .attribute("report-type", "delivery-status")
        .attribute("boundary", boundary);
    MessageBuilder::new()
        .from((
            "Mail Delivery System".to_string(),
            format!("MAILER-DAEMON@{host}"),
        ))
        .to(input.original_sender.clone())
        .subject(subject)
        .date(Date::new(input.date.div_euclid(1000)))
        .message_id(format!("{}@{host}", clean(&input.dsn_id)))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .header("X-Outguard-Dsn-For", Raw::new(clean(&input.envelope_id)))
        .body(MimePart::new(report, parts))
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> DsnInput {
        DsnInput {
            reporting_mta: "relay.example.com".into(),
            envelope_id: "0190a1b2c3d4e5f60718293a4b5c6d7e".into(),
            arrival_date: 1_700_000_000_000,
            date: 1_700_000_360_000,
            original_sender: "alice@example.com".into(),
            dsn_id: "0190a1b2c3d4e5f60718293a4b5c6d7f".into(),
            recipients: vec![
                DsnRecipient {
                    address: "nobody@example.net".into(),
                    action: DsnAction::Failed,
                    status: "5.1.1".into(),
                    remote_mta: Some("mx1.example.net".into()),
                    diagnostic: Some("550 5.1.1 <nobody@example.net>: No such user".into()),
                    last_attempt: Some(1_700_000_300_000),
                },
                DsnRecipient {
                    address: "later@example.org".into(),
                    action: DsnAction::Failed,
                    status: "4.4.7".into(),
                    remote_mta: None,
                    diagnostic: Some("delivery time expired: 451 4.3.0 try again".into()),
                    last_attempt: None,
                },
            ],
            original_headers: b"From: Alice <alice@example.com>\nTo: nobody@example.net\r\nSubject: Hello\r\n\r\nbody must not appear\r\n".to_vec(),
        }
    }

    /// Golden fixture: input above -> `tests/fixtures/dsn/expected.eml`. Set `UPDATE_GOLDEN=1`
    /// to rewrite the expected file after an intended change, then review the diff.
    #[test]
    fn dsn_matches_golden_fixture() {
        let got = build_dsn(&input());
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/dsn/expected.eml"
        );
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &got).unwrap();
        }
        let want = std::fs::read(path).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }

    /// Issue 24: a remote reply longer than a QP line was soft-broken, and parsers that read the
    /// delivery-status part raw got a cut `Diagnostic-Code`. The part is 7bit, folded.
    #[test]
    fn long_diagnostic_is_folded_7bit_and_parses_back_whole() {
        let diag = "550 5.1.1 <bounce@dest.test>: no such user here, please check the \
                    address and try again, verify-marker-7781";
        let mut inp = input();
        inp.recipients[0].diagnostic = Some(diag.into());
        let got = build_dsn(&inp);
        let text = String::from_utf8(got.clone()).unwrap();
        let part = text
            .split("Content-Type: message/delivery-status")
            .nth(1)
            .expect("status part");
        let (part_head, part_body) = part.split_once("\r\n\r\n").unwrap();
        assert!(
            part_head.contains("Content-Transfer-Encoding: 7bit"),
            "{part_head}"
        );
        let part_body = part_body.split("\r\n--").next().unwrap();
        assert!(
            !part_body.contains("=\r\n"),
            "no soft line breaks: {part_body}"
        );
        for line in part_body.split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        // A second parser (ours for inbound DSNs) reads the whole diagnostic back.
        let parsed = crate::dsn_report::parse(&got);
        let r = &parsed.recipients[0];
        assert!(
            r.diagnostic
                .as_deref()
                .unwrap()
                .ends_with("verify-marker-7781"),
            "{r:?}"
        );
        assert!(
            r.diagnostic
                .as_deref()
                .unwrap()
                .contains("no such user here, please check")
        );
    }

    #[test]
    fn dsn_is_crlf_only_and_parses() {
        let got = build_dsn(&input());
        for (i, b) in got.iter().enumerate() {
            if *b == b'\n' {
                assert_eq!(got.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}");
            }
            if *b == b'\r' {
                assert_eq!(got.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        let msg = mail_parser::MessageParser::default().parse(&got).unwrap();
        assert!(msg.root_part().is_multipart());
        assert_eq!(msg.parts.len(), 4);
        let text = String::from_utf8_lossy(&got);
        assert!(text.contains(
            "Final-Recipient: rfc822; nobody@example.net\r\nAction: failed\r\nStatus: 5.1.1"
        ));
        assert!(text.contains("Subject: Hello\r\n"));
        assert!(!text.contains("body must not appear"));
    }

    /// Fuzz find (`dsn`): a CR inside an original header line went out as a bare CR.
    #[test]
    fn original_header_with_inner_cr_gives_no_bare_cr() {
        let mut i = input();
        i.original_headers =
            b"From: alice@a.example\r\nTo: bob@dest.example\r\x12\0\0: hi\r\n\r\n".to_vec();
        let got = build_dsn(&i);
        for (n, b) in got.iter().enumerate() {
            if *b == b'\r' {
                assert_eq!(got.get(n + 1), Some(&b'\n'), "bare CR at {n}");
            }
        }
        assert!(String::from_utf8_lossy(&got).contains("To: bob@dest.example \u{12}"));
    }

    /// Fuzz find (`dsn`): a status with a CR, shown in the human-readable part when there is
    /// no diagnostic, went out uncleaned (a bare CR inside quoted-printable).
    #[test]
    fn status_without_diagnostic_is_cleaned() {
        let mut i = input();
        i.recipients[0].diagnostic = None;
        i.recipients[0].status = "5.1.1\r\x07".into();
        let got = build_dsn(&i);
        for (n, b) in got.iter().enumerate() {
            if *b == b'\r' {
                assert_eq!(got.get(n + 1), Some(&b'\n'), "bare CR at {n}");
            }
        }
    }

    /// Fuzz find (`dsn`): a remote reply containing `--dsn-<id>` made mail-parser split the
    /// report there. The boundary now avoids anything the parts contain.
    #[test]
    fn boundary_never_occurs_in_the_parts() {
        let mut i = input();
        let b = format!("--dsn-{}", i.dsn_id);
        i.recipients[0].remote_mta = Some(format!("mx{b}x{b}-1"));
        i.original_headers = format!("X-Trap: {b}-2\r\n").into_bytes();
        let got = build_dsn(&i);
        let text = String::from_utf8_lossy(&got);
        assert!(text.contains(&format!("boundary=\"dsn-{}-3\"", i.dsn_id)));
        let msg = mail_parser::MessageParser::default().parse(&got).unwrap();
        assert_eq!(msg.parts.len(), 4);
    }

    #[test]
    fn split_headers_stops_at_blank_line() {
        assert_eq!(
            split_headers(b"A: 1\r\nB: 2\r\n\r\nbody"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(split_headers(b"A: 1\n\nbody"), b"A: 1\n");
        assert_eq!(split_headers(b"A: 1"), b"A: 1");
    }
}
