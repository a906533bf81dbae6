//! The body digest that ties a complaint's attached copy to the message Outguard sent
//! (SPEC §9: "a complaint trains the overlay only with the message as Outguard sent it").
//!
//! Only the body is digested — the bytes after the first empty line. Everything Outguard adds
//! on the way out is a header (`X-Outguard-Id`, `DKIM-Signature`, `Received`), and so is
//! everything a mailbox provider adds before attaching the copy, so headers can never match and
//! are left out. What the transport may change in a body is normalised away, the way DKIM's
//! canonicalisation does:
//! - line endings: CRLF, bare LF and bare CR are all one line break (we deliver CRLF; the
//!   submitter, an mbox export or a parser may have given LF);
//! - trailing spaces and tabs at the end of each line;
//! - empty lines at the end of the body (a MIME part's closing CRLF belongs to the boundary,
//!   and parsers disagree on whether to keep it).
//!
//! Anything else — a changed word, an added line, a re-encoded part — gives another digest,
//! and the complaint then counts (if trusted) but does not train.

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of the normalised body of `message` (headers, then an empty line, then the
/// body; a message without an empty line has an empty body).
pub fn body_digest(message: &[u8]) -> String {
    let mut h = Sha256::new();
    for line in body_lines(body_of(message)) {
        h.update(line);
        h.update(b"\r\n");
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// Whether `copy` (a full message, as attached to a report) has the body digest `digest`.
pub fn matches(copy: &[u8], digest: &str) -> bool {
    body_digest(copy) == digest
}

fn body_of(message: &[u8]) -> &[u8] {
    let mut i = 0;
    // Find the first empty line, whatever the line ending.
    let mut line_start = 0;
    while i < message.len() {
        let (eol, next) = match message[i] {
            b'\r' if message.get(i + 1) == Some(&b'\n') => (i, i + 2),
            b'\r' | b'\n' => (i, i + 1),
            _ => {
                i += 1;
                continue;
            }
        };
        if eol == line_start {
            return &message[next..];
        }
        line_start = next;
        i = next;
    }
    &[]
}

/// The body's lines without their endings or trailing blanks, trailing empty lines dropped.
fn body_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                lines.push(&body[start..i]);
                i += 2;
                start = i;
            }
            b'\r' | b'\n' => {
                lines.push(&body[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < body.len() {
        lines.push(&body[start..]);
    }
    let mut lines: Vec<&[u8]> = lines
        .into_iter()
        .map(|l| {
            let end = l
                .iter()
                .rposition(|b| *b != b' ' && *b != b'\t')
                .map_or(0, |p| p + 1);
            &l[..end]
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &[u8] = b"From: a@x.example\r\nSubject: hi\r\n\r\nHello,\r\nsee you.\r\n";

    #[test]
    fn the_copy_as_delivered_matches_whatever_headers_were_added() {
        let d = body_digest(SENT);
        let delivered = b"X-Outguard-Id: abc\r\nDKIM-Signature: v=1\r\nFrom: a@x.example\r\nSubject: hi\r\n\r\nHello,\r\nsee you.\r\n";
        assert!(matches(delivered, &d));
        // As a provider attaches it: its own headers, LF endings, trailing blanks, no final
        // line break, or an extra empty line before the boundary.
        let attached =
            b"Received: from relay\nFrom: a@x.example\nSubject: hi\n\nHello,  \nsee you.";
        assert!(matches(attached, &d));
        let padded = b"From: a@x.example\r\n\r\nHello,\r\nsee you.\r\n\r\n\r\n";
        assert!(matches(padded, &d));
    }

    #[test]
    fn any_change_to_the_text_is_another_digest() {
        let d = body_digest(SENT);
        for altered in [
            &b"From: a@x.example\r\n\r\nHello,\r\nsee you!\r\n"[..],
            b"From: a@x.example\r\n\r\nHello,\r\n\r\nsee you.\r\n",
            b"From: a@x.example\r\n\r\nHello,\r\nsee you.\r\nBuy now.\r\n",
            b"From: a@x.example\r\nSubject: hi\r\nHello,\r\nsee you.\r\n",
        ] {
            assert!(
                !matches(altered, &d),
                "{}",
                String::from_utf8_lossy(altered)
            );
        }
        assert!(d.starts_with("sha256:") && d.len() == 7 + 64, "{d}");
    }

    #[test]
    fn a_message_without_a_body_has_the_empty_digest() {
        assert_eq!(
            body_digest(b"Subject: x\r\n"),
            body_digest(b"Subject: y\r\n\r\n")
        );
    }
}
