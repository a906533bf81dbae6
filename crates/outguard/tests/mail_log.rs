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
    assert!(
        !relay.stderr().contains('\u{1b}'),
        "colour codes in a log file"
    );
}
