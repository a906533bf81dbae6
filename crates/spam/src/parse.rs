//! Raw bytes -> `Doc`: the bounded, owned view of a message that tokenising and signals read.
//! mail-parser does MIME, transfer decoding and charsets; here we cap what it is given (bytes,
//! header count) and what we keep (parts, text, HTML, URLs), so hostile input costs little.

use std::borrow::Cow;

use mail_parser::{HeaderName, MessageParser, MimeHeaders, PartType};

use crate::html::{self, HtmlInfo};
use crate::limits::{MAX_HEADERS, MAX_HTML_BYTES, MAX_PARSE_BYTES, MAX_PARTS, MAX_TEXT_BYTES};
use crate::urls::{self, Url};

/// One attachment (or any part with a file name).
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

/// What the engine knows about one message after parsing.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub subject: String,
    pub from_name: String,
    pub from_addr: String,
    pub from_domain: String,
    pub reply_to_domain: Option<String>,
    /// Plain-text bodies, or the HTML converted to text when there is no plain part.
    pub text: String,
    /// Raw HTML of the HTML parts (capped).
    pub html: String,
    pub html_info: HtmlInfo,
    pub text_parts: usize,
    pub html_parts: usize,
    pub image_parts: usize,
    pub parts: usize,
    pub attachments: Vec<Attachment>,
    /// Parts mail-parser flagged as badly encoded, plus unknown/mislabelled charsets.
    pub encoding_problems: usize,
    pub charsets: Vec<String>,
    /// Raw 8-bit bytes in the header block that are not UTF-8 (unencoded legacy charsets).
    pub raw_8bit_headers: bool,
    pub list_unsubscribe: bool,
    pub precedence_bulk: bool,
    pub urls: Vec<Url>,
    /// The input was longer than we parse, had too many headers/parts, or ran out of time.
    pub truncated: bool,
    /// mail-parser could not make a message of it at all.
    pub unparsable: bool,
}

/// Parses at most `MAX_PARSE_BYTES` with at most `MAX_HEADERS` headers. Never panics.
pub fn parse(raw: &[u8]) -> Doc {
    let mut doc = Doc::default();
    let mut input: Cow<[u8]> = Cow::Borrowed(raw);
    if input.len() > MAX_PARSE_BYTES {
        input = Cow::Borrowed(&raw[..MAX_PARSE_BYTES]);
        doc.truncated = true;
    }
    let (capped, cut, eight_bit) = cap_headers(&input);
    doc.raw_8bit_headers = eight_bit;
    if let Some(c) = capped {
        input = Cow::Owned(c);
    }
    doc.truncated |= cut;
    let Some(msg) = MessageParser::default().parse(input.as_ref()) else {
        doc.unparsable = true;
        return doc;
    };
    read_headers(&msg, &mut doc);
    read_parts(&msg, &mut doc);
    if !doc.html.is_empty() {
        doc.html_info = html::analyse(&doc.html);
    }
    if doc.text_parts == 0 && !doc.html.is_empty() {
        // Hidden text is what the reader never sees: the HIDDEN_* signals weigh it, the words do not.
        let visible = html::without_hidden(&doc.html, &doc.html_info.hidden_spans);
        let mut t = mail_parser::decoders::html::html_to_text(&visible);
        truncate_str(&mut t, MAX_TEXT_BYTES);
        doc.text = t;
    }
    scrub_placeholder_addresses(&mut doc.text);
    doc.urls = urls::collect(&doc.html_info.links, &doc.text);
    doc
}

fn read_headers(msg: &mail_parser::Message<'_>, doc: &mut Doc) {
    doc.subject = msg.subject().unwrap_or("").chars().take(400).collect();
    if let Some(addr) = msg.from().and_then(|a| a.first()) {
        doc.from_name = addr.name().unwrap_or("").chars().take(200).collect();
        doc.from_addr = addr.address().unwrap_or("").to_ascii_lowercase();
        doc.from_domain = urls::addr_domain(&doc.from_addr);
        // A redacted sender (`user@example.com`) is an unknown sender, not a mismatch.
        if crate::features::is_placeholder_domain(&doc.from_domain) {
            doc.from_domain.clear();
        }
    }
    doc.reply_to_domain = msg
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| urls::addr_domain(&a.to_ascii_lowercase()))
        .filter(|d| !d.is_empty() && !crate::features::is_placeholder_domain(d));
    doc.list_unsubscribe = msg.header(HeaderName::ListUnsubscribe).is_some();
    doc.precedence_bulk = msg
        .header_raw("Precedence")
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "bulk" || v == "list" || v == "junk"
        })
        .unwrap_or(false);
}

fn read_parts(msg: &mail_parser::Message<'_>, doc: &mut Doc) {
    if msg.parts.len() > MAX_PARTS {
        doc.truncated = true;
    }
    for part in msg.parts.iter().take(MAX_PARTS) {
        doc.parts += 1;
        if part.is_encoding_problem {
            doc.encoding_problems += 1;
        }
        let ctype = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        if let Some(cs) = part.content_type().and_then(|c| c.attribute("charset")) {
            let cs = cs.trim().to_ascii_lowercase();
            if doc.charsets.len() < 8 && !doc.charsets.contains(&cs) {
                if mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes()).is_none()
                    && !matches!(cs.as_str(), "us-ascii" | "ascii" | "utf-8" | "utf8")
                {
                    doc.encoding_problems += 1;
                }
                doc.charsets.push(cs);
            }
        }
        if let Some(name) = part.attachment_name() {
            push_attachment(doc, name, &ctype, part.len());
        }
        match &part.body {
            PartType::Text(t) if part.attachment_name().is_none() => {
                doc.text_parts += 1;
                push_capped(&mut doc.text, t, MAX_TEXT_BYTES);
            }
            PartType::Html(h) if part.attachment_name().is_none() => {
                doc.html_parts += 1;
                push_capped(&mut doc.html, h, MAX_HTML_BYTES);
            }
            PartType::Binary(_) | PartType::InlineBinary(_) => {
                if ctype.starts_with("image/") {
                    doc.image_parts += 1;
                } else if part.attachment_name().is_none() {
                    push_attachment(doc, "", &ctype, part.len());
                }
            }
            _ => {}
        }
    }
}

/// Blanks addresses at the RFC 2606 placeholder domains in body text (`user@example.com`):
/// they are what corpus redaction leaves, never what a sender wrote, so their words must not
/// become evidence for either class.
fn scrub_placeholder_addresses(text: &mut String) {
    if !text.contains("@example.") {
        return;
    }
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end();
        let bare = word.trim_matches(|c: char| "<>()[]\"',;:".contains(c));
        let is_placeholder = bare
            .rsplit_once('@')
            .is_some_and(|(_, d)| crate::features::is_placeholder_domain(&d.to_ascii_lowercase()));
        if is_placeholder {
            out.push_str(&piece[word.len()..]);
        } else {
            out.push_str(piece);
        }
    }
    *text = out;
}

fn push_attachment(doc: &mut Doc, name: &str, ctype: &str, size: usize) {
    if doc.attachments.len() < MAX_PARTS {
        doc.attachments.push(Attachment {
            name: name.chars().take(200).collect::<String>().to_lowercase(),
            content_type: ctype.to_string(),
            size,
        });
    }
}

fn push_capped(dst: &mut String, src: &str, cap: usize) {
    if dst.len() >= cap {
        return;
    }
    if !dst.is_empty() {
        dst.push('\n');
    }
    let room = cap.saturating_sub(dst.len());
    let mut end = src.len().min(room);
    while end > 0 && !src.is_char_boundary(end) {
        end -= 1;
    }
    dst.push_str(&src[..end]);
}

pub(crate) fn truncate_str(s: &mut String, cap: usize) {
    if s.len() > cap {
        let mut end = cap;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Finds the header block; if it holds more than `MAX_HEADERS` fields, returns a copy with only
/// the first ones. Also reports raw 8-bit bytes in headers. `(copy, was_cut, eight_bit)`.
fn cap_headers(raw: &[u8]) -> (Option<Vec<u8>>, bool, bool) {
    let mut fields = 0usize;
    let mut pos = 0usize;
    let mut eight_bit = false;
    let mut cut_at = None;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            fields += 1;
            if fields > MAX_HEADERS && cut_at.is_none() {
                cut_at = Some(pos);
            }
        }
        // Raw UTF-8 in headers is legal (RFC 6532) and common in non-English mail: only bytes
        // that are not UTF-8 count, so a language is never an anomaly.
        if cut_at.is_none() && line.iter().any(|&b| b >= 0x80) && std::str::from_utf8(line).is_err()
        {
            eight_bit = true;
        }
        pos = end;
    }
    match cut_at {
        Some(cut) => {
            let mut v = Vec::with_capacity(cut + raw.len().saturating_sub(pos));
            v.extend_from_slice(&raw[..cut]);
            v.extend_from_slice(&raw[pos.min(raw.len())..]);
            (Some(v), true, eight_bit)
        }
        None => (None, false, eight_bit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_headers() {
        let mut raw = Vec::new();
        for i in 0..1000 {
            raw.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"Subject: late\r\n\r\nbody text\r\n");
        let doc = parse(&raw);
        assert!(doc.truncated);
        assert!(doc.text.contains("body text"));
        assert_eq!(doc.subject, "");
    }

    #[test]
    fn hidden_filler_is_not_read_as_words_but_a_preheader_is() {
        let filler = "meeting agenda kernel patch review thanks regards ".repeat(4);
        let raw = format!(
            "From: a@shop.test\r\nSubject: hi\r\nContent-Type: text/html\r\n\r\n\
             <div style=\"display:none\">{filler}</div>\
             <span style=\"display:none\">Your order ships today</span>\
             <p>Claim your prize now</p>\r\n"
        );
        let doc = parse(raw.as_bytes());
        assert!(doc.text.contains("Claim your prize"), "{}", doc.text);
        assert!(doc.text.contains("Your order ships"), "{}", doc.text);
        assert!(!doc.text.contains("kernel"), "{}", doc.text);
        assert!(doc.html_info.hidden_chars > 100, "the signal still sees it");
    }

    #[test]
    fn placeholder_senders_and_addresses_are_not_evidence() {
        let raw = b"From: \"PayPal\" <user@example.com>\r\nReply-To: a@example.org\r\nSubject: hi\r\n\r\nwrite to <user@example.com> or bob@real.org\r\n";
        let doc = parse(raw);
        assert_eq!(doc.from_domain, "");
        assert_eq!(doc.reply_to_domain, None);
        assert!(!doc.text.contains("example"), "{}", doc.text);
        assert!(doc.text.contains("bob@real.org"));
    }

    #[test]
    fn reads_basic_fields() {
        let raw = b"From: \"Bob\" <bob@Bakery.COM>\r\nReply-To: x@gmail.com\r\nSubject: hi\r\n\r\nhello\r\n";
        let doc = parse(raw);
        assert_eq!(doc.from_domain, "bakery.com");
        assert_eq!(doc.from_name, "Bob");
        assert_eq!(doc.reply_to_domain.as_deref(), Some("gmail.com"));
        assert_eq!(doc.text_parts, 1);
    }
}
