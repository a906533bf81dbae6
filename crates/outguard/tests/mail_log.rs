//! The mail log (issue 20): a message's life is in the relay's log one line per event, under the
//! target `outguard::mail`, with the message id on each — and no terminal colour codes when the
//! log is a file.

mod common;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_life_is_one_log_line_per_event() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "bob@a.example",
        &["x@dest.example"],
        &message("bob@a.example", "x@dest.example", "log me", "hello"),
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let id = queued_id(&r);
    assert_eq!(sc.dest.wait_for(1, Duration::from_secs(20)).await.len(), 1);

    let mut lines = Vec::new();
    for _ in 0..100 {
        let log = relay.stderr();
        lines = log
            .lines()
            .filter(|l| l.contains("outguard::mail") && l.contains(&id))
            .map(str::to_string)
            .collect();
        if lines.iter().any(|l| l.contains("event=\"delivered\"")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split("event=").nth(1))
        .filter_map(|e| e.split_whitespace().next())
        .collect();
    for want in ["\"received\"", "\"verdict\"", "\"queued\"", "\"delivered\""] {
        assert!(
            events.contains(&want),
            "no {want} line for {id}: {lines:#?}"
        );
    }
    let pos = |e: &str| events.iter().position(|x| *x == e).expect("event");
    assert!(pos("\"received\"") < pos("\"delivered\""), "{events:?}");
    // Like Postfix's `delay=`: the delivered line says how long the message waited.
    let delivered = lines
        .iter()
        .find(|l| l.contains("event=\"delivered\""))
        .expect("delivered line");
    assert!(
        delivered.contains("delay=") && delivered.contains("\"delay\":"),
        "{delivered}"
    );
    assert!(
        !relay.stderr().contains('\u{1b}'),
        "colour codes in a log file"
    );
}

/// A refusal at RCPT has no message id, so it is a line of its own: event `refused`, the stage,
/// the code, the account, the tenant and the client IP (issue 20). Here bob's tenant allows two
/// external recipients per hour and bob asks for three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_at_rcpt_is_one_log_line_with_code_account_and_ip() {
    let sc = scene("").await;
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=2",
    ]);
    let relay = RelayProc::start(sc.dir());
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    c.cmd("EHLO c.test").await;
    assert!(
        c.auth_plain("bob@a.example", "bob-pw")
            .await
            .starts_with("235")
    );
    assert!(c.cmd("MAIL FROM:<bob@a.example>").await.starts_with("250"));
    let mut replies = Vec::new();
    for i in 0..3 {
        replies.push(c.cmd(&format!("RCPT TO:<r{i}@dest.example>")).await);
    }
    assert_eq!(
        replies[2], "550 5.2.2 Submission quota exceeded",
        "{replies:?}"
    );
    c.cmd("QUIT").await;

    let mut line = None;
    for _ in 0..100 {
        line = relay
            .stderr()
            .lines()
            .find(|l| l.contains("outguard::mail") && l.contains("event=\"refused\""))
            .map(str::to_string);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = line.expect("no refused line in the mail log");
    for want in [
        "refused at RCPT: Submission quota exceeded",
        "stage=\"rcpt\"",
        "code=\"550 5.2.2\"",
        "account=\"bob@a.example\"",
        "tenant=\"a\"",
        "client=127.0.0.1",
        "listener=\"submission\"",
        "from=\"bob@a.example\"",
        "rcpt=\"r2@dest.example\"",
    ] {
        assert!(line.contains(want), "{want} missing in: {line}");
    }
    // One line per refusal: the two accepted recipients are not logged as refused.
    let refused = relay
        .stderr()
        .lines()
        .filter(|l| l.contains("event=\"refused\""))
        .count();
    assert_eq!(refused, 1, "{}", relay.stderr());
}
