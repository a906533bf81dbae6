//! Message records, trace events, blobs and the audit log on every backend, plus the
//! `append_events` throughput figure.

mod common;

use common::TestDb;
use outguard_store::StoreError;
use outguard_types::model::{
    EventKind, MessageFilter, MessageRecord, MessageState, Submitter, TraceEvent,
};
use outguard_types::verdict::Class;

const T0: i64 = 1_700_000_000_000;

fn msg(id: &str, from: &str, rcpts: &[&str], at: i64, tenant: &str) -> MessageRecord {
    MessageRecord {
        id: id.into(),
        tenant: Some(tenant.into()),
        submitter: Submitter::Account(from.into()),
        mail_from: from.into(),
        rcpts: rcpts.iter().map(|r| r.to_string()).collect(),
        header_from: Some(from.into()),
        message_id_header: Some(format!("<{id}@mail.example>")),
        subject: Some(format!("subject {id}")),
        size: 1234,
        received_at: at,
        state: MessageState::Queued,
        pool: None,
        class: Some(Class::Clean),
        score: Some(0.5),
        node: "node-a".into(),
        body_digest: None,
    }
}

fn ids(v: Vec<MessageRecord>) -> Vec<String> {
    v.into_iter().map(|m| m.id).collect()
}

async fn messages_and_search(db: &TestDb) {
    let s = &db.store;
    let m1 = msg(
        "m1",
        "alice@acme.example",
        &["bob@dest.example", "Carol@Other.example"],
        T0,
        "acme",
    );
    let mut m2 = msg(
        "m2",
        "Alice@ACME.example",
        &["dave@dest.example"],
        T0 + 1000,
        "acme",
    );
    m2.submitter = Submitter::Connector("10.0.0.0/8".into());
    m2.class = Some(Class::Spam);
    m2.score = None;
    let mut m3 = msg(
        "m3",
        "gina@globex.example",
        &["bob@dest.example"],
        T0 + 2000,
        "globex",
    );
    m3.submitter = Submitter::System;
    m3.tenant = None;
    m3.message_id_header = None;
    let mut m1 = m1;
    m1.body_digest = Some("sha256:00ff".into());
    for m in [&m1, &m2, &m3] {
        s.insert_message(m).await.unwrap();
    }
    // A later upsert without the digest (state changes) keeps the one recorded at spool time.
    s.insert_message(&MessageRecord {
        body_digest: None,
        ..m1.clone()
    })
    .await
    .unwrap();
    assert_eq!(s.message("m1").await.unwrap().as_ref(), Some(&m1));
    assert_eq!(s.message("m2").await.unwrap().as_ref(), Some(&m2));
    assert_eq!(s.message("m3").await.unwrap().as_ref(), Some(&m3));
    assert_eq!(s.message("zz").await.unwrap(), None);

    let find = |f: MessageFilter| async move { ids(s.search_messages(&f).await.unwrap()) };
    assert_eq!(find(MessageFilter::default()).await, ["m3", "m2", "m1"]);
    assert_eq!(
        find(MessageFilter {
            from: Some("ALICE@acme.example".into()),
            ..Default::default()
        })
        .await,
        ["m2", "m1"]
    );
    assert_eq!(
        find(MessageFilter {
            from: Some("@globex.example".into()),
            ..Default::default()
        })
        .await,
        ["m3"]
    );
    assert_eq!(
        find(MessageFilter {
            to: Some("bob@dest.example".into()),
            ..Default::default()
        })
        .await,
        ["m3", "m1"]
    );
    assert_eq!(
        find(MessageFilter {
            to: Some("carol@other.example".into()),
            ..Default::default()
        })
        .await,
        ["m1"]
    );
    assert_eq!(
        find(MessageFilter {
            to: Some("@dest.example".into()),
            ..Default::default()
        })
        .await,
        ["m3", "m2", "m1"]
    );
    assert_eq!(
        find(MessageFilter {
            since: Some(T0 + 1000),
            ..Default::default()
        })
        .await,
        ["m3", "m2"]
    );
    assert_eq!(
        find(MessageFilter {
            until: Some(T0 + 1000),
            ..Default::default()
        })
        .await,
        ["m1"]
    );
    assert_eq!(
        find(MessageFilter {
            tenant: Some("acme".into()),
            ..Default::default()
        })
        .await,
        ["m2", "m1"]
    );
    assert_eq!(
        find(MessageFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await,
        ["m3"]
    );
    assert_eq!(
        find(MessageFilter {
            from: Some("alice@acme.example".into()),
            to: Some("bob@dest.example".into()),
            since: Some(T0),
            until: Some(T0 + 5000),
            tenant: Some("acme".into()),
            state: Some(MessageState::Queued),
            id: Some("m1".into()),
            limit: Some(10),
        })
        .await,
        ["m1"]
    );
    // Quotes and wildcards in input are data, not SQL.
    assert!(
        find(MessageFilter {
            from: Some("x' OR '1'='1".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    s.set_message_state("m2", MessageState::Held, None)
        .await
        .unwrap();
    s.set_message_state("m1", MessageState::Delivered, Some("regular"))
        .await
        .unwrap();
    s.set_message_state("m1", MessageState::Delivered, None)
        .await
        .unwrap();
    assert_eq!(
        find(MessageFilter {
            state: Some(MessageState::Held),
            ..Default::default()
        })
        .await,
        ["m2"]
    );
    let m1b = s.message("m1").await.unwrap().unwrap();
    assert_eq!(
        (m1b.state, m1b.pool.as_deref()),
        (MessageState::Delivered, Some("regular"))
    );
    // Forward only: a late `deferred` (events overtaken on a busy node) after `delivered`
    // leaves the record delivered.
    s.set_message_state("m1", MessageState::Deferred, Some("high-risk"))
        .await
        .unwrap();
    let m1c = s.message("m1").await.unwrap().unwrap();
    assert_eq!(
        (m1c.state, m1c.pool.as_deref()),
        (MessageState::Delivered, Some("regular"))
    );
    assert!(matches!(
        s.set_message_state("zz", MessageState::Held, None).await,
        Err(StoreError::NotFound { .. })
    ));

    // Upsert: the same id again replaces the record and its recipients.
    let mut again = m1.clone();
    again.rcpts = vec!["erin@dest.example".into()];
    s.insert_message(&again).await.unwrap();
    assert_eq!(
        s.message("m1").await.unwrap().unwrap().rcpts,
        ["erin@dest.example"]
    );
    assert!(
        find(MessageFilter {
            to: Some("carol@other.example".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    assert_eq!(
        s.find_message_by_header_id("<m2@mail.example>")
            .await
            .unwrap()
            .as_deref(),
        Some("m2")
    );
    assert_eq!(
        s.find_message_by_header_id("m2@mail.example")
            .await
            .unwrap()
            .as_deref(),
        Some("m2")
    );
    assert_eq!(s.find_message_by_header_id("<nope@x>").await.unwrap(), None);
    assert_eq!(s.find_message_by_header_id("<>").await.unwrap(), None);

    // Many recipients (more than one INSERT chunk) keep their order.
    let many: Vec<String> = (0..700).map(|i| format!("r{i}@dest.example")).collect();
    let mut big = msg("m4", "alice@acme.example", &[], T0 + 3000, "acme");
    big.rcpts = many.clone();
    s.insert_message(&big).await.unwrap();
    assert_eq!(s.message("m4").await.unwrap().unwrap().rcpts, many);

    // Scores present and absent, many times over (regression: a NULL f64 bind once poisoned the
    // PostgreSQL statement cache for later non-NULL scores).
    for i in 0..30 {
        let mut m = msg(
            &format!("s{i}"),
            "x@acme.example",
            &["y@dest.example"],
            T0 - 10_000 + i,
            "acme",
        );
        m.score = if i % 2 == 0 {
            None
        } else {
            Some(f64::from(i as i32) / 3.0)
        };
        s.insert_message(&m).await.unwrap();
        assert_eq!(s.message(&m.id).await.unwrap().unwrap().score, m.score);
    }

    // Retention prunes finished messages only (crates/store/tests/retention.rs for the rest).
    for m in find(MessageFilter::default()).await {
        s.set_message_state(&m, MessageState::Delivered, None)
            .await
            .unwrap();
    }
    let kind = outguard_store::RetentionKind::Messages;
    assert_eq!(s.prune_batch(kind, T0 + 1500, 500).await.unwrap(), 32);
    assert_eq!(find(MessageFilter::default()).await, ["m4", "m3"]);
}
store_test!(messages_and_search);

fn ev(id: &str, i: i64, kind: EventKind) -> TraceEvent {
    TraceEvent {
        message_id: id.into(),
        at: T0 + i,
        kind,
        detail: format!("step {i} of {id}"),
        data: serde_json::json!({ "i": i, "reply": "250 2.0.0 ok", "ip": "127.0.0.2" }),
    }
}

async fn event_batches(db: &TestDb) {
    let s = &db.store;
    s.append_events(&[]).await.unwrap();
    let kinds = [
        EventKind::Received,
        EventKind::Verdict,
        EventKind::Policy,
        EventKind::Attempt,
    ];
    let batch: Vec<TraceEvent> = (0..450)
        .map(|i| ev(if i % 3 == 0 { "a" } else { "b" }, i, kinds[i as usize % 4]))
        .collect();
    s.append_events(&batch).await.unwrap();
    let mut plain = ev("a", 1000, EventKind::Complaint);
    plain.data = serde_json::Value::Null;
    s.append_events(std::slice::from_ref(&plain)).await.unwrap();

    let a = s.events("a").await.unwrap();
    let want: Vec<TraceEvent> = batch
        .iter()
        .filter(|e| e.message_id == "a")
        .cloned()
        .chain([plain])
        .collect();
    assert_eq!(a, want);
    assert_eq!(s.events("b").await.unwrap().len(), 300);
    assert!(s.events("none").await.unwrap().is_empty());
}
store_test!(event_batches);

/// Issue 18: a trace batch (records, events, state changes in order) is written in one
/// transaction: the same result as writing them one by one, and all or nothing.
async fn trace_batch_in_one_transaction(db: &TestDb) {
    use outguard_store::TraceWrite;
    let s = &db.store;
    let m1 = msg("tb1", "alice@acme.example", &["x@dest.example"], T0, "acme");
    let m2 = msg(
        "tb2",
        "alice@acme.example",
        &["y@dest.example"],
        T0 + 1,
        "acme",
    );
    let (e1, e2, e3) = (
        ev("tb1", 1, EventKind::Received),
        ev("tb1", 2, EventKind::Attempt),
        ev("tb2", 3, EventKind::Received),
    );
    let batch = [
        TraceWrite::Event(&e1),
        TraceWrite::Message(&m1),
        TraceWrite::Message(&m2),
        TraceWrite::Event(&e3),
        TraceWrite::State {
            id: "tb1",
            state: MessageState::Delivered,
            pool: Some("regular"),
        },
        TraceWrite::Event(&e2),
        // Overtaken: a late deferral does not move a delivered message back.
        TraceWrite::State {
            id: "tb1",
            state: MessageState::Deferred,
            pool: None,
        },
        // A state for a message never recorded changes nothing (and fails nothing).
        TraceWrite::State {
            id: "nowhere",
            state: MessageState::Delivered,
            pool: None,
        },
    ];
    s.write_trace_batch(&batch).await.unwrap();
    s.write_trace_batch(&[]).await.unwrap();
    let got = s.message("tb1").await.unwrap().expect("tb1");
    assert_eq!(
        (got.state, got.pool.as_deref()),
        (MessageState::Delivered, Some("regular"))
    );
    assert_eq!(s.events("tb1").await.unwrap(), vec![e1, e2]);
    assert_eq!(s.events("tb2").await.unwrap(), vec![e3]);
    assert_eq!(
        s.message("tb2").await.unwrap().map(|m| m.state),
        Some(MessageState::Queued)
    );

    // All or nothing: a record the database refuses (an event with a NUL byte in its text)
    // takes the whole batch back, the message record before it too.
    let m3 = msg(
        "tb3",
        "alice@acme.example",
        &["z@dest.example"],
        T0 + 2,
        "acme",
    );
    let mut bad = ev("tb3", 4, EventKind::Received);
    bad.detail = "nul \u{0} byte".into();
    assert!(
        s.write_trace_batch(&[TraceWrite::Message(&m3), TraceWrite::Event(&bad)])
            .await
            .is_err()
            || s.backend() == outguard_store::Backend::Sqlite,
        "PostgreSQL refuses NUL in text"
    );
    if s.backend() == outguard_store::Backend::Postgres {
        assert_eq!(s.message("tb3").await.unwrap(), None, "rolled back");
    }
}
store_test!(trace_batch_in_one_transaction);

/// Throughput of `append_events` with batches of 100 (printed, not asserted).
async fn append_events_throughput(db: &TestDb) {
    let s = &db.store;
    let batches = 50;
    let start = std::time::Instant::now();
    for b in 0..batches {
        let batch: Vec<TraceEvent> = (0..100)
            .map(|i| ev(&format!("msg{b}-{}", i / 5), i, EventKind::Attempt))
            .collect();
        s.append_events(&batch).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = batches * 100;
    println!(
        "append_events {:?}: {n} events in {batches} batches of 100: {:.0} events/s ({:.2} ms/batch)",
        s.backend(),
        n as f64 / secs,
        secs * 1000.0 / batches as f64
    );
    assert_eq!(s.events("msg0-0").await.unwrap().len(), 5);
}
store_test!(append_events_throughput);

async fn blobs_and_audit(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.get_blob("spam/overlay").await.unwrap(), None);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    s.put_blob("spam/overlay", &bytes).await.unwrap();
    assert_eq!(s.get_blob("spam/overlay").await.unwrap(), Some(bytes));
    s.put_blob("spam/overlay", b"v2").await.unwrap();
    assert_eq!(
        s.get_blob("spam/overlay").await.unwrap().as_deref(),
        Some(&b"v2"[..])
    );

    s.audit("operator", "tenant.add", "acme", "", None, T0)
        .await
        .unwrap();
    s.audit(
        "token:abc",
        "restricted.lift",
        "alice@acme.example",
        "false positive",
        Some("127.0.0.1"),
        T0 + 1,
    )
    .await
    .unwrap();
    let log = s.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].action.as_str(), log[0].ip.as_deref()),
        ("restricted.lift", Some("127.0.0.1"))
    );
    assert_eq!((log[1].actor.as_str(), log[1].at), ("operator", T0));
    assert_eq!(s.audit_log(1).await.unwrap().len(), 1);
}
store_test!(blobs_and_audit);
