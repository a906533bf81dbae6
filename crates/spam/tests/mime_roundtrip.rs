//! MIME round trips (issue 10): messages written by mail-builder from random headers, text
//! bodies (ASCII, UTF-8, long lines) and binary attachments, read back by the engine's parser
//! (`outguard_spam::parse`, mail-parser underneath). What the engine scores must be what was
//! sent: the text parts, the header values and the attachments (names, sizes, and the bytes
//! mail-parser decodes for them, with the parser settings the engine uses).

use mail_builder::MessageBuilder;
use mail_parser::{MessageParser, MimeHeaders as _};
use proptest::prelude::*;

/// Words of ASCII, accented Latin, CJK and emoji: header values are words joined by one space
/// (folding and RFC 2047 encoding may change whitespace, never words).
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]{1,12}",
        "[a-zé-ü]{1,8}",
        "[\u{4e00}-\u{4e50}]{1,6}",
        "[\u{1f600}-\u{1f640}]{1,3}",
    ]
}

fn phrase(max_words: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..max_words).prop_map(|w| w.join(" "))
}

/// Body lines: short or long (up to 900 characters: past SMTP's 998-octet line limit once
/// UTF-8 encoded, so the builder must encode them), ASCII or UTF-8.
fn body() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[ -~]{0,80}",
        "[ -~]{200,900}",
        "[a-z \u{e9}\u{4e00}-\u{4e10}\u{1f600}]{0,300}",
    ];
    prop::collection::vec(line, 1..12).prop_map(|l| {
        // Trailing spaces on a line are transport-fragile by design (RFC 5322 §2.2.3 folding).
        l.iter()
            .map(|x| x.trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[derive(Debug, Clone)]
struct Input {
    subject: String,
    from_name: String,
    from_local: String,
    x_header: String,
    text: String,
    attachments: Vec<(String, Vec<u8>)>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        phrase(12),
        phrase(4),
        "[a-z][a-z0-9.]{0,10}[a-z0-9]",
        "[A-Za-z0-9][ -~]{0,60}[A-Za-z0-9]",
        body(),
        prop::collection::vec(
            (
                "[a-z0-9]{1,12}\\.bin",
                prop::collection::vec(any::<u8>(), 0..3000),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(subject, from_name, from_local, x_header, text, attachments)| Input {
                subject,
                from_name,
                from_local,
                x_header,
                text,
                attachments,
            },
        )
}

fn build(i: &Input) -> Vec<u8> {
    let mut b = MessageBuilder::new()
        // Not an RFC 2606 name: the parser treats placeholder senders as unknown.
        .from((
            i.from_name.clone(),
            format!("{}@a.roundtrip.net", i.from_local),
        ))
        .to("x@dest.example")
        .subject(i.subject.as_str())
        .header(
            "X-Campaign",
            mail_builder::headers::text::Text::new(i.x_header.as_str()),
        )
        .text_body(i.text.as_str());
    for (name, bytes) in &i.attachments {
        b = b.attachment("application/octet-stream", name.as_str(), bytes.as_slice());
    }
    b.write_to_vec().expect("mail-builder writes")
}

/// Line endings are the transport's business: compare text with LF line ends.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn built_messages_parse_back_equal(i in input()) {
        let raw = build(&i);
        let doc = outguard_spam::parse::parse(&raw);
        prop_assert!(!doc.unparsable && !doc.truncated);
        prop_assert_eq!(&doc.subject, &i.subject);
        prop_assert_eq!(&doc.from_name, &i.from_name);
        prop_assert_eq!(&doc.from_addr, &format!("{}@a.roundtrip.net", i.from_local));
        prop_assert_eq!(&doc.from_domain, "a.roundtrip.net");
        prop_assert_eq!(doc.text_parts, 1);
        let text = lf(&doc.text);
        prop_assert_eq!(text.trim_end(), i.text.trim_end());
        prop_assert_eq!(doc.encoding_problems, 0);
        prop_assert_eq!(doc.attachments.len(), i.attachments.len());
        for (got, (name, bytes)) in doc.attachments.iter().zip(&i.attachments) {
            prop_assert_eq!(&got.name, name);
            prop_assert_eq!(&got.content_type, "application/octet-stream");
            prop_assert_eq!(got.size, bytes.len());
        }
        // The bytes themselves (the Doc keeps only sizes), and a header the Doc does not keep.
        let msg = MessageParser::default().parse(&raw).expect("parses");
        let x = msg.header_raw("X-Campaign").expect("X-Campaign");
        prop_assert_eq!(x.trim(), i.x_header.as_str());
        prop_assert_eq!(msg.attachment_count(), i.attachments.len());
        for (n, (name, bytes)) in i.attachments.iter().enumerate() {
            let a = msg.attachment(n as u32).expect("attachment");
            prop_assert_eq!(a.attachment_name(), Some(name.as_str()));
            prop_assert_eq!(a.contents(), bytes.as_slice());
        }
    }
}
