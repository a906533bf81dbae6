//! DSN round trip (issue 10): for random original messages (written by mail-builder: UTF-8
//! subjects, display names, custom headers, long bodies) and random recipients, statuses and
//! diagnostics, the DSN parsed back by mail-parser is a `multipart/report` that still carries
//! the original's header block unchanged and names every recipient with its action and status.

use mail_builder::MessageBuilder;
use mail_parser::{MessageParser, MimeHeaders as _};
use outguard_proto::dsn::{DsnAction, DsnInput, DsnRecipient, build_dsn, split_headers};
use proptest::prelude::*;

fn original() -> impl Strategy<Value = (String, String, String, Vec<u8>)> {
    (
        "[A-Za-z0-9\u{e9}\u{4e00}-\u{4e10}]( ?[A-Za-z0-9\u{e9}\u{4e00}-\u{4e10}\u{1f600}]){0,60}",
        "[A-Za-z]{1,8}( [A-Za-z]{1,8}){0,2}",
        "[A-Za-z0-9][ -~]{0,60}[A-Za-z0-9]",
        "[ -~\n]{0,2000}",
    )
        .prop_map(|(subject, name, custom, body)| {
            let raw = MessageBuilder::new()
                .from((name.clone(), "alice@a.example".to_string()))
                .to("x@dest.example")
                .subject(subject.trim())
                .message_id("m1@a.example")
                .header(
                    "X-Campaign",
                    mail_builder::headers::text::Text::new(custom.clone()),
                )
                .text_body(body)
                .write_to_vec()
                .expect("builds");
            (subject.trim().to_string(), name, custom, raw)
        })
}

fn recipient() -> impl Strategy<Value = DsnRecipient> {
    (
        "[a-z0-9._-]{1,20}@[a-z0-9-]{1,12}\\.(example|test)",
        any::<bool>(),
        "[45]\\.[0-7]\\.[0-9]{1,2}",
        prop::option::of("[a-z0-9.-]{1,30}"),
        prop::option::of("[ -~]{0,200}"),
        prop::option::of(0i64..4_000_000_000_000),
    )
        .prop_map(
            |(address, failed, status, remote_mta, diagnostic, last_attempt)| DsnRecipient {
                address,
                action: if failed {
                    DsnAction::Failed
                } else {
                    DsnAction::Delayed
                },
                status,
                remote_mta,
                diagnostic,
                last_attempt,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn dsn_keeps_original_headers_and_recipients(
        (subject, name, custom, raw) in original(),
        rcpts in prop::collection::vec(recipient(), 1..6),
        id in "[0-9a-f]{32}",
    ) {
        let input = DsnInput {
            reporting_mta: "relay.outguard.test".into(),
            envelope_id: id.clone(),
            arrival_date: 1_700_000_000_000,
            date: 1_700_000_360_000,
            original_sender: "alice@a.example".into(),
            dsn_id: format!("{id}d"),
            recipients: rcpts.clone(),
            original_headers: split_headers(&raw).to_vec(),
        };
        let dsn = build_dsn(&input);
        let msg = MessageParser::default().parse(&dsn).expect("DSN parses");
        let ct = msg.content_type().expect("content type");
        prop_assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
        prop_assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        prop_assert_eq!(msg.parts.len(), 4);
        let to = msg.to().and_then(|a| a.first()).and_then(|a| a.address());
        prop_assert_eq!(to, Some("alice@a.example"));

        // The original's header block, byte for byte, and its values as a parser reads them.
        let headers = msg.parts[3].contents();
        prop_assert_eq!(headers, split_headers(&raw));
        let orig = MessageParser::default().parse_headers(headers).expect("headers parse");
        prop_assert_eq!(orig.subject(), Some(subject.as_str()));
        let from = orig.from().and_then(|a| a.first()).expect("From");
        prop_assert_eq!(from.name(), Some(name.as_str()));
        prop_assert_eq!(from.address(), Some("alice@a.example"));
        prop_assert_eq!(orig.message_id(), Some("m1@a.example"));
        prop_assert_eq!(orig.header_raw("X-Campaign").map(str::trim), Some(custom.as_str()));

        // Every recipient, in order, with its action and status.
        let status = String::from_utf8_lossy(msg.parts[2].contents()).into_owned();
        let envelope = format!("Original-Envelope-Id: {id}\r\n");
        prop_assert!(status.contains(&envelope));
        let mut at = 0;
        for r in &rcpts {
            let block = format!(
                "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
                r.address,
                r.action.as_str(),
                r.status
            );
            let found = status[at..].find(&block);
            prop_assert!(found.is_some(), "recipient block missing: {}", block);
            at += found.unwrap_or(0) + block.len();
        }
    }
}
