//! The DSN builder on arbitrary original messages, recipients, statuses and diagnostics: never
//! a panic, and what it writes is mail we can send — CRLF only (no bare CR or LF, the
//! smuggling guarantee also holds for our own mail), and it parses back as a
//! `multipart/report` with the delivery-status and original-headers parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_parser::MimeHeaders as _;
use outguard_proto::dsn::{DsnAction, DsnInput, DsnRecipient, build_dsn, split_headers};

/// Split `data` into up to `n` fields on 0x00 (the rest is the original message).
fn fields(data: &[u8], n: usize) -> (Vec<String>, &[u8]) {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < n {
        let Some(i) = rest.iter().position(|&b| b == 0) else {
            break;
        };
        out.push(String::from_utf8_lossy(&rest[..i]).into_owned());
        rest = &rest[i + 1..];
    }
    while out.len() < n {
        out.push(String::new());
    }
    (out, rest)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let (f, original) = fields(data, 6);
    let mut recipients = Vec::new();
    for (i, addr) in f[0].split(',').take(8).enumerate() {
        recipients.push(DsnRecipient {
            address: addr.to_string(),
            action: if flags >> (i % 8) & 1 == 0 {
                DsnAction::Failed
            } else {
                DsnAction::Delayed
            },
            status: f[1].clone(),
            remote_mta: (flags & 0x40 != 0).then(|| f[2].clone()),
            diagnostic: (flags & 0x80 != 0).then(|| f[3].clone()),
            last_attempt: Some(i64::from(flags) * 1_000_003),
        });
    }
    let input = DsnInput {
        reporting_mta: f[4].clone(),
        envelope_id: f[5].clone(),
        arrival_date: i64::from(flags) * 7_777_777,
        date: 1_700_000_000_000,
        original_sender: "sender@example.org".into(),
        dsn_id: "0123456789abcdef".into(),
        recipients,
        original_headers: split_headers(original).to_vec(),
    };
    let out = build_dsn(&input);
    assert!(!out.is_empty(), "DSN not built");
    for (i, &b) in out.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && out[i - 1] == b'\r', "bare LF in a DSN at {i}");
        }
        if b == b'\r' {
            assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR in a DSN at {i}");
        }
    }
    let msg = mail_parser::MessageParser::new()
        .parse(&out)
        .expect("DSN parses");
    let ct = msg.content_type().expect("content type");
    assert_eq!(ct.ctype(), "multipart");
    assert_eq!(ct.subtype(), Some("report"));
    assert!(msg.parts.len() >= 4, "report parts: {}", msg.parts.len());
});
