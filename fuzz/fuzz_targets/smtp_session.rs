//! The whole SMTP session on arbitrary client bytes, fed in arbitrary chunks, with every
//! decision answered "yes": it must never panic, and a message handed out must never contain
//! a bare CR or LF (the smuggling guarantee).
#![no_main]

use libfuzzer_sys::fuzz_target;
use outguard_proto::{Event, ListenerKind, Reply, Session, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let kind = if split & 1 == 0 { ListenerKind::Connector } else { ListenerKind::Submission };
    let mut s = Session::new(SessionConfig {
        hostname: "fuzz.test".into(),
        kind,
        tls_available: true,
        tls_active: split & 2 != 0,
        plaintext_auth_ok: true,
        max_message_size: 4096,
        max_recipients: 5,
    });
    let chunk = usize::from(split >> 2).max(1);
    for piece in rest.chunks(chunk) {
        s.feed(piece);
        for _ in 0..10_000 {
            match s.next_event() {
                Event::NeedMore => break,
                Event::Close(_) => return,
                Event::StartTls(_) => s.tls_started(),
                Event::Auth(c) => s.auth_done(Ok(c.username)),
                Event::Mail(_) => s.mail_done(Ok(())),
                Event::Rcpt(_) => s.rcpt_done(Ok(())),
                Event::Message(body) => {
                    for (i, &b) in body.iter().enumerate() {
                        if b == b'\n' {
                            assert!(i > 0 && body[i - 1] == b'\r', "bare LF in an accepted message");
                        }
                        if b == b'\r' {
                            assert!(body.get(i + 1) == Some(&b'\n'), "bare CR in an accepted message");
                        }
                    }
                    s.data_done(Reply::queued("X"));
                }
                Event::Reply(_) | Event::TransactionReset => {}
            }
        }
    }
});
