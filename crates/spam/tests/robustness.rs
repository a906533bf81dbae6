//! Hostile MIME: every message must scan without panicking and within a time bound (generous
//! for unoptimised dependencies on a busy 2-core CI machine).

use std::time::{Duration, Instant};

use outguard_spam::{Engine, ScanContext};

const BOUND: Duration = Duration::from_millis(1500);

fn scan_bounded(name: &str, raw: &[u8]) {
    let engine = Engine::builtin();
    let t = Instant::now();
    let v = engine.scan(raw, &ScanContext::default());
    let took = t.elapsed();
    assert!(v.score.is_finite(), "{name}: score not finite");
    assert!(took < BOUND, "{name}: took {took:?}");
}

#[test]
fn deep_multipart_nesting() {
    let mut m = String::from("From: a@b.example\nSubject: nest\nMIME-Version: 1.0\n");
    let depth = 5_000;
    for i in 0..depth {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    m.push_str("Content-Type: text/plain\n\nhello\n");
    for i in (0..depth).rev() {
        m.push_str(&format!("--b{i}--\n"));
    }
    scan_bounded("deep nesting", m.as_bytes());
}

#[test]
fn deep_message_rfc822_nesting() {
    let mut m = String::new();
    for _ in 0..2_000 {
        m.push_str("Content-Type: message/rfc822\n\n");
    }
    m.push_str("Subject: inner\n\nbody\n");
    scan_bounded("rfc822 nesting", m.as_bytes());
}

#[test]
fn ten_megabytes_of_base64() {
    let mut m = String::from(
        "From: a@b.example\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nsee attached\n--x\nContent-Type: application/octet-stream; name=a.bin\nContent-Transfer-Encoding: base64\n\n",
    );
    let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n";
    while m.len() < 10 * 1024 * 1024 {
        m.push_str(line);
    }
    m.push_str("--x--\n");
    scan_bounded("10 MB base64", m.as_bytes());
}

#[test]
fn hundred_thousand_headers() {
    let mut m = String::with_capacity(3_000_000);
    for i in 0..100_000 {
        m.push_str(&format!("X-Header-{i}: value {i}\n"));
    }
    m.push_str("Subject: many\n\nbody\n");
    scan_bounded("100k headers", m.as_bytes());
}

#[test]
fn broken_encodings() {
    let cases: Vec<Vec<u8>> = vec![
        b"Content-Transfer-Encoding: base64\nContent-Type: text/plain\n\n!!!!not base64@@@@\n====\n".to_vec(),
        b"Content-Transfer-Encoding: quoted-printable\n\n=ZZ=0=\n=\n=E9=\xff\n".to_vec(),
        b"Subject: =?utf-8?B?////?= =?bogus?Q?=ZZ?= =?utf-8?Q?\xff\xfe?=\n\nx".to_vec(),
        b"Content-Type: text/plain; charset=\"\xff\xfe\"\n\n\xff\xfe\xfd".to_vec(),
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n----".to_vec(),
        b"Content-Type: multipart/alternative; boundary=q\n\n--q\nContent-Type: text/html\n\n<a href=\"http://[::1\">x</a><div style=display:none>".to_vec(),
        vec![0u8; 100_000],
        (0..200_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect(),
        Vec::new(),
        b"\n\n\n".to_vec(),
    ];
    for (i, c) in cases.iter().enumerate() {
        scan_bounded(&format!("broken case {i}"), c);
    }
}

#[test]
fn huge_html_with_many_links_and_hidden_tags() {
    let mut h = String::from("Content-Type: text/html\n\n<html>");
    for i in 0..50_000 {
        h.push_str(&format!(
            "<a href=\"http://{i}.example/\">www.x{i}.com</a><b style=\"display:none\">w{i}</b>"
        ));
    }
    scan_bounded("huge html", h.as_bytes());
}

#[test]
fn long_lines_and_tokens() {
    let mut m = String::from("Subject: ");
    m.push_str(&"A".repeat(200_000));
    m.push_str("\n\n");
    m.push_str(&"x".repeat(2_000_000));
    m.push_str(&" !!!$$$???".repeat(50_000));
    scan_bounded("long lines", m.as_bytes());
}
