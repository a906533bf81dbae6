//! The DATA reader against an oracle (issue 14). For any bytes after `DATA`, fed in arbitrary
//! chunks: the reader ends exactly after the first CRLF.CRLF (counting the CRLF that ended the
//! DATA command) or not at all; it accepts the message only when the bytes before the end hold
//! no bare CR, bare LF or NUL, and then hands out exactly the dot-unstuffed lines; and when it
//! refuses, the session closes without reading one more byte as a command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outguard_proto::data::{DataProgress, DataReader};
use outguard_proto::{Event, ListenerKind, Reply, Session, SessionConfig};

/// Where the message must end, per RFC 5321 §4.1.1.4 with nothing else ever an end.
fn oracle_end(input: &[u8]) -> Option<usize> {
    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(input);
    framed.windows(5).position(|w| w == b"\r\n.\r\n").map(|p| p + 3)
}

/// The message the reader must hand out for `content` (the bytes before `.CRLF`), or None when
/// it must be refused.
fn oracle_body(content: &[u8]) -> Option<Vec<u8>> {
    if content.contains(&0) {
        return None;
    }
    for (i, &b) in content.iter().enumerate() {
        let bare_lf = b == b'\n' && (i == 0 || content[i - 1] != b'\r');
        let bare_cr = b == b'\r' && content.get(i + 1) != Some(&b'\n');
        if bare_lf || bare_cr {
            return None;
        }
    }
    let mut out = Vec::with_capacity(content.len());
    for line in content.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Some(out)
}

fn session() -> Session {
    Session::new(SessionConfig {
        hostname: "fuzz.test".into(),
        kind: ListenerKind::Connector,
        tls_available: false,
        tls_active: false,
        plaintext_auth_ok: false,
        max_message_size: 1 << 20,
        max_recipients: 5,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let chunk = usize::from(split).max(1);

    // The reader alone.
    let mut r = DataReader::new(1 << 20);
    let mut consumed = 0;
    let mut end = None;
    for piece in input.chunks(chunk) {
        if let DataProgress::Done(n) = r.ingest(piece) {
            end = Some(consumed + n);
            break;
        }
        consumed += piece.len();
    }
    let want = oracle_end(input);
    assert_eq!(end, want, "the reader and the oracle disagree on the end");
    let Some(end) = end else { return };
    let content = &input[..end - 3]; // the bytes before ".\r\n"
    assert_eq!(r.finish().ok(), oracle_body(content), "accepted bytes differ from the oracle");

    // The same bytes inside a session: a refused DATA ends the session; nothing after it runs.
    let mut s = session();
    s.feed(b"EHLO c\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<b@b.example>\r\nDATA\r\n");
    s.feed(input);
    s.feed(b"MAIL FROM:<smuggled@a.example>\r\nRCPT TO:<v@b.example>\r\nDATA\r\nx\r\n.\r\n");
    let mut mails = 0;
    let mut messages = 0;
    let mut refused = false;
    for _ in 0..10_000 {
        match s.next_event() {
            Event::NeedMore | Event::Close(_) => break,
            Event::Mail(_) => {
                mails += 1;
                assert!(!refused, "a command was read after a refused DATA");
                s.mail_done(Ok(()));
            }
            Event::Rcpt(_) => s.rcpt_done(Ok(())),
            Event::Auth(c) => s.auth_done(Ok(c.username)),
            Event::StartTls(_) => s.tls_started(),
            Event::Message(_) => {
                messages += 1;
                s.data_done(Reply::queued("X"));
            }
            Event::Reply(r) => {
                if r.to_bytes().starts_with(b"550 5.6.0") {
                    refused = true;
                }
            }
            Event::TransactionReset => {}
        }
    }
    assert!(messages <= mails, "more messages than transactions");
});
