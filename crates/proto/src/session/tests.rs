//! In-memory session tests: a scripted client, decisions answered by closures.

use super::*;
use crate::sasl::encode_b64;

fn cfg(kind: ListenerKind) -> SessionConfig {
    SessionConfig {
        hostname: "relay.test".into(),
        kind,
        tls_available: true,
        tls_active: false,
        plaintext_auth_ok: false,
        max_message_size: 1000,
        max_recipients: 3,
    }
}

/// Feeds `input`, answers decisions (auth ok for "good", mail/rcpt ok unless they contain
/// "deny", messages queued), returns the replies as text lines and the messages.
fn run(s: &mut Session, input: &[u8]) -> (Vec<String>, Vec<Vec<u8>>) {
    s.feed(input);
    let mut out = Vec::new();
    let mut msgs = Vec::new();
    loop {
        match s.next_event() {
            Event::NeedMore => break,
            Event::Reply(r) | Event::Close(r) | Event::StartTls(r) => out.push(
                String::from_utf8(r.to_bytes())
                    .unwrap()
                    .trim_end()
                    .to_string(),
            ),
            Event::Auth(c) => s.auth_done(if c.password == "good" {
                Ok(c.username)
            } else {
                Err(Reply::auth_failed())
            }),
            Event::Mail(m) => s.mail_done(if m.from.contains("deny") {
                Err(Reply::sender_not_owned())
            } else {
                Ok(())
            }),
            Event::Rcpt(r) => s.rcpt_done(if r.contains("deny") {
                Err(Reply::new(550, "5.1.1", "no"))
            } else {
                Ok(())
            }),
            Event::Message(m) => {
                msgs.push(m);
                s.data_done(Reply::queued("ID1"));
            }
            Event::TransactionReset => out.push("<reset>".into()),
        }
    }
    (out, msgs)
}

fn codes(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with('<'))
        .map(|l| l[..3].to_string())
        .collect()
}

#[test]
fn auth_is_required_and_not_offered_before_tls() {
    let mut s = Session::new(cfg(ListenerKind::Submission));
    let (out, _) = run(&mut s, b"EHLO c\r\nMAIL FROM:<a@a.example>\r\n");
    assert!(
        out[0].contains("STARTTLS") && !out[0].contains("AUTH"),
        "{out:?}"
    );
    assert_eq!(out[1], "530 5.7.0 Authentication required");
    let (out, _) = run(
        &mut s,
        format!("AUTH PLAIN {}\r\n", encode_b64(b"\0a@a.example\0good")).as_bytes(),
    );
    assert_eq!(
        out,
        ["538 5.7.11 Encryption required for requested authentication mechanism"]
    );
}

#[test]
fn full_transaction_after_tls_with_pipelining() {
    let mut s = Session::new(cfg(ListenerKind::Submission));
    let (out, _) = run(&mut s, b"EHLO c\r\nSTARTTLS\r\n");
    assert_eq!(out.last().unwrap(), "220 2.0.0 Ready to start TLS");
    s.tls_started();
    let plain = encode_b64(b"\0a@a.example\0good");
    let script = format!(
        "EHLO c\r\nAUTH PLAIN {plain}\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<b@b.example>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n"
    );
    let (out, msgs) = run(&mut s, script.as_bytes());
    assert!(out[0].contains("AUTH PLAIN LOGIN") && !out[0].contains("STARTTLS"));
    assert_eq!(codes(&out[1..]), ["235", "250", "250", "354", "250", "221"]);
    assert_eq!(msgs, [b"Subject: hi\r\n\r\n.dot\r\n".to_vec()]);
    assert!(s.is_closed());
}

#[test]
fn pipelined_plaintext_after_starttls_is_refused() {
    let mut s = Session::new(cfg(ListenerKind::Submission));
    let (out, _) = run(&mut s, b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<x@y.example>\r\n");
    assert_eq!(
        out.last().unwrap(),
        "554 5.5.1 Commands pipelined after STARTTLS are not allowed"
    );
}

#[test]
fn auth_login_and_failure() {
    let mut c = cfg(ListenerKind::Submission);
    c.plaintext_auth_ok = true;
    let mut s = Session::new(c);
    let (out, _) = run(&mut s, b"EHLO c\r\nAUTH LOGIN\r\n");
    assert!(out[0].contains("AUTH PLAIN LOGIN"));
    assert_eq!(out[1], "334 VXNlcm5hbWU6");
    let (out, _) = run(
        &mut s,
        format!(
            "{}\r\n{}\r\n",
            encode_b64(b"a@a.example"),
            encode_b64(b"bad")
        )
        .as_bytes(),
    );
    assert_eq!(
        out,
        [
            "334 UGFzc3dvcmQ6",
            "535 5.7.8 Authentication credentials invalid"
        ]
    );
    let (out, _) = run(&mut s, b"AUTH LOGIN\r\n*\r\n");
    assert_eq!(codes(&out), ["334", "501"]);
    let (out, _) = run(&mut s, b"AUTH CRAM-MD5\r\n");
    assert_eq!(codes(&out), ["504"]);
}

#[test]
fn recipient_cap_and_sequencing() {
    let mut s = Session::new(cfg(ListenerKind::Connector));
    let (out, _) = run(
        &mut s,
        b"MAIL FROM:<a@a.example>\r\nEHLO c\r\nRCPT TO:<b@b.example>\r\nDATA\r\n",
    );
    assert_eq!(codes(&out), ["503", "250", "503", "503"]);
    let (out, _) = run(
        &mut s,
        b"MAIL FROM:<a@a.example>\r\nRCPT TO:<1@b.example>\r\nRCPT TO:<2@b.example>\r\nRCPT TO:<3@b.example>\r\nRCPT TO:<4@b.example>\r\nRSET\r\n",
    );
    assert_eq!(
        out,
        [
            "250 2.1.0 Sender ok",
            "250 2.1.5 Recipient ok",
            "250 2.1.5 Recipient ok",
            "250 2.1.5 Recipient ok",
            "452 4.5.3 Too many recipients",
            "<reset>",
            "250 2.0.0 Ok"
        ]
    );
}

#[test]
fn denied_sender_and_recipient_are_the_loops_replies() {
    let mut s = Session::new(cfg(ListenerKind::Connector));
    let (out, _) = run(&mut s, b"EHLO c\r\nMAIL FROM:<deny@a.example>\r\nMAIL FROM:<ok@a.example>\r\nRCPT TO:<deny@b.example>\r\nDATA\r\n");
    assert_eq!(
        &out[1..],
        [
            "550 5.7.1 Sender address not owned by this account",
            "250 2.1.0 Sender ok",
            "550 5.1.1 no",
            "554 5.5.1 No valid recipients"
        ]
    );
}

#[test]
fn bare_lf_in_data_refuses_the_transaction_and_queues_nothing() {
    let mut s = Session::new(cfg(ListenerKind::Connector));
    let (out, msgs) = run(&mut s, b"EHLO c\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<b@b.example>\r\nDATA\r\nx\n.\nMAIL FROM:<evil@a.example>\r\n.\r\nNOOP\r\n");
    assert!(msgs.is_empty());
    // The session ends at the refusal: the pipelined NOOP after it is never read as a command.
    assert_eq!(
        &out[4..],
        ["<reset>", "550 5.6.0 Bare CR or LF not allowed"]
    );
    assert!(s.is_closed());
}

#[test]
fn oversized_message_and_size_param() {
    let mut s = Session::new(cfg(ListenerKind::Connector));
    let (out, _) = run(&mut s, b"EHLO c\r\nMAIL FROM:<a@a.example> SIZE=5000\r\n");
    assert_eq!(
        out[1],
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    let big = format!(
        "MAIL FROM:<a@a.example>\r\nRCPT TO:<b@b.example>\r\nDATA\r\n{}\r\n.\r\n",
        "x".repeat(2000)
    );
    let (out, msgs) = run(&mut s, big.as_bytes());
    assert!(msgs.is_empty());
    assert_eq!(
        out.last().unwrap(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
}

#[test]
fn overlong_command_line_and_garbage() {
    let mut s = Session::new(cfg(ListenerKind::Connector));
    let long = format!("EHLO {}\r\nNOOP\r\n", "a".repeat(5000));
    let (out, _) = run(&mut s, long.as_bytes());
    assert_eq!(codes(&out), ["500", "250"]);
    let (out, _) = run(&mut s, b"\x00\xff\xfe garbage\r\nBDAT 10 LAST\r\n");
    assert_eq!(codes(&out), ["500", "502"]);
}

#[test]
fn open_relay_address_tricks_are_refused() {
    let mut s = Session::new(cfg(ListenerKind::Connector));
    run(&mut s, b"EHLO c\r\nMAIL FROM:<a@a.example>\r\n");
    for evil in [
        "u%o.example@b.example",
        "\"u@o\"@b.example",
        "u@o@b.example",
    ] {
        let (out, _) = run(&mut s, format!("RCPT TO:<{evil}>\r\n").as_bytes());
        assert!(
            out[0].starts_with("553") || out[0].starts_with("501"),
            "{evil}: {out:?}"
        );
    }
}

#[test]
fn byte_at_a_time_gives_the_same_transcript() {
    let script = b"EHLO c\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<b@b.example>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    let mut whole = Session::new(cfg(ListenerKind::Connector));
    let (expect, m1) = run(&mut whole, script);
    let mut s = Session::new(cfg(ListenerKind::Connector));
    let mut got = Vec::new();
    let mut m2 = Vec::new();
    for b in script {
        let (o, m) = run(&mut s, &[*b]);
        got.extend(o);
        m2.extend(m);
    }
    assert_eq!(got, expect);
    assert_eq!(m1, m2);
}

#[test]
fn eight_bit_addresses_need_smtputf8_and_eight_bit_headers_are_data() {
    let mut s = Session::new(cfg(ListenerKind::Connector));
    let (out, _) = run(
        &mut s,
        "EHLO c\r\nMAIL FROM:<jos\u{e9}@a.example>\r\nMAIL FROM:<a@a.example>\r\nRCPT TO:<m\u{fc}ller@b.example>\r\n"
            .as_bytes(),
    );
    assert_eq!(
        out[1..],
        [
            "553 5.6.7 Non-ASCII address requires SMTPUTF8",
            "250 2.1.0 Sender ok",
            "553 5.6.7 Non-ASCII address requires SMTPUTF8",
        ]
    );
    // With SMTPUTF8 the same addresses are taken; 8-bit header bytes are just message data.
    let (out, msgs) = run(
        &mut s,
        "RSET\r\nMAIL FROM:<jos\u{e9}@a.example> SMTPUTF8\r\nRCPT TO:<m\u{fc}ller@b.example>\r\nDATA\r\nSubject: Gr\u{fc}\u{df}e\r\n\r\nhi\r\n.\r\n"
            .as_bytes(),
    );
    assert_eq!(codes(&out), ["250", "250", "250", "354", "250"], "{out:?}");
    assert!(String::from_utf8_lossy(&msgs[0]).contains("Subject: Gr\u{fc}\u{df}e"));
}
