//! Retention on every backend (issue 17): for each kind, records older than the cutoff go and
//! younger ones stay; batches never delete more than their limit; unfinished messages and their
//! trace stay however old. Times are explicit (no sleeping): the cutoff is `T0`.

mod common;

use common::TestDb;
use outguard_policy::{Alert, AlertKind, Measure};
use outguard_store::{DnsblCheck, FblRecord, RetentionKind};
use outguard_types::model::TraceEvent;
use outguard_types::model::{EventKind, MessageFilter, MessageRecord, MessageState, Submitter};

const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

fn msg(id: &str, at: i64) -> MessageRecord {
    MessageRecord {
        id: id.into(),
        tenant: Some("acme".into()),
        submitter: Submitter::Account("alice@acme.example".into()),
        mail_from: "alice@acme.example".into(),
        rcpts: vec!["bob@dest.example".into(), "carol@dest.example".into()],
        header_from: None,
        message_id_header: None,
        subject: None,
        size: 10,
        received_at: at,
        state: MessageState::Queued,
        pool: None,
        class: None,
        score: None,
        node: "n".into(),
        body_digest: None,
    }
}

fn ev(id: &str, at: i64) -> TraceEvent {
    TraceEvent {
        message_id: id.into(),
        at,
        kind: EventKind::Received,
        detail: String::new(),
        data: serde_json::json!({}),
    }
}

/// Prune `kind` to the end in batches of `batch`; the batch sizes seen.
async fn prune_all(db: &TestDb, kind: RetentionKind, batch: u32) -> Vec<u64> {
    let mut sizes = Vec::new();
    loop {
        let n = db.store.prune_batch(kind, T0, batch).await.expect("prune");
        sizes.push(n);
        if n < u64::from(batch) {
            return sizes;
        }
    }
}

async fn ids(db: &TestDb) -> Vec<String> {
    let f = MessageFilter {
        limit: Some(1000),
        ..MessageFilter::default()
    };
    let mut v: Vec<String> = db
        .store
        .search_messages(&f)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    v.sort();
    v
}

async fn messages_and_trace(db: &TestDb) {
    let s = &db.store;
    // Finished and old: go. Finished and young: stay. Unfinished and old: stay.
    let cases = [
        ("old-delivered", T0 - DAY, MessageState::Delivered),
        ("old-bounced", T0 - 1, MessageState::Bounced),
        ("old-deleted", T0 - 5 * DAY, MessageState::Deleted),
        ("edge-delivered", T0, MessageState::Delivered),
        ("new-delivered", T0 + DAY, MessageState::Delivered),
        ("old-queued", T0 - DAY, MessageState::Queued),
        ("old-deferred", T0 - DAY, MessageState::Deferred),
        ("old-held", T0 - 9 * DAY, MessageState::Held),
        ("old-quarantined", T0 - DAY, MessageState::Quarantined),
    ];
    for (id, at, state) in cases {
        s.insert_message(&msg(id, at)).await.unwrap();
        if state != MessageState::Queued {
            s.set_message_state(id, state, None).await.unwrap();
        }
        s.append_events(&[ev(id, at), ev(id, at + 2 * DAY)])
            .await
            .unwrap();
        assert!(
            s.claim_fbl_count(id, "complaint", "10.0.0.0/8", at)
                .await
                .unwrap()
        );
    }
    // Three old finished messages, two per batch.
    assert_eq!(prune_all(db, RetentionKind::Messages, 2).await, vec![2, 1]);
    assert_eq!(
        ids(db).await,
        [
            "edge-delivered",
            "new-delivered",
            "old-deferred",
            "old-held",
            "old-quarantined",
            "old-queued"
        ]
    );
    // Their recipients and feedback counts went with them (a new count is a first one again).
    assert!(s.message("old-delivered").await.unwrap().is_none());
    assert!(
        s.claim_fbl_count("old-delivered", "complaint", "10.0.0.0/8", T0)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_fbl_count("old-held", "complaint", "10.0.0.0/8", T0)
            .await
            .unwrap()
    );
    assert_eq!(
        s.message("new-delivered")
            .await
            .unwrap()
            .unwrap()
            .rcpts
            .len(),
        2
    );

    // Trace: each event by its own time; an unfinished message keeps its whole trace.
    // Old events: old-delivered, old-bounced, old-deleted (messages gone: events still go),
    // not old-queued/deferred/held/quarantined.
    let before: usize = {
        let mut n = 0;
        for (id, ..) in cases {
            n += s.events(id).await.unwrap().len();
        }
        n
    };
    assert_eq!(before, 18);
    let sizes = prune_all(db, RetentionKind::Trace, 500).await;
    // old-delivered, old-bounced: their first event; old-deleted: both (T0-5d, T0-3d).
    assert_eq!(sizes, vec![4]);
    for (id, at, state) in cases {
        let evs = s.events(id).await.unwrap();
        let unfinished = matches!(
            state,
            MessageState::Queued
                | MessageState::Deferred
                | MessageState::Held
                | MessageState::Quarantined
        );
        let old = [at, at + 2 * DAY].iter().filter(|t| **t < T0).count();
        let want = if unfinished { 2 } else { 2 - old };
        assert_eq!(evs.len(), want, "{id}");
        assert!(evs.iter().all(|e| e.at >= T0 || unfinished), "{id}");
    }
    // Events of a message with no record (never written, or pruned) go by their time too.
    s.append_events(&[ev("ghost", T0 - 1), ev("ghost", T0 + 1)])
        .await
        .unwrap();
    assert_eq!(prune_all(db, RetentionKind::Trace, 500).await, vec![1]);
    assert_eq!(s.events("ghost").await.unwrap().len(), 1);
}
store_test!(messages_and_trace);

fn report(id: &str, at: i64) -> FblRecord {
    FblRecord {
        id: id.into(),
        attributed: None,
        feedback_type: "abuse".into(),
        source_ip: None,
        received_at: at,
        malformed: None,
        fields: serde_json::json!({}),
        trusted: true,
        trusted_by: None,
        raw: String::new(),
    }
}

async fn reports_audit_alerts(db: &TestDb) {
    let s = &db.store;
    for i in 0..7 {
        let at = T0 - 3 + i; // T0-3 … T0+3: three older than the cutoff
        s.insert_fbl_report(&report(&format!("r{i}"), at), b"raw")
            .await
            .unwrap();
        s.audit("cli", "account.add", &format!("a{i}"), "", None, at)
            .await
            .unwrap();
        s.insert_alert(&Alert::new(
            AlertKind::SuspiciousSendingPattern,
            Some("acme"),
            None,
            format!("alert {i}"),
            vec![Measure::new("x", 1, 1)],
            at,
        ))
        .await
        .unwrap();
    }
    assert_eq!(prune_all(db, RetentionKind::Reports, 2).await, vec![2, 1]);
    assert_eq!(prune_all(db, RetentionKind::Audit, 500).await, vec![3]);
    assert_eq!(prune_all(db, RetentionKind::Alerts, 3).await, vec![3, 0]);
    for i in 0..7 {
        let kept = T0 - 3 + i >= T0;
        let r = s.fbl_report(&format!("r{i}")).await.unwrap();
        assert_eq!(r.is_some(), kept, "report r{i}");
    }
    let audit = s.audit_log(100).await.unwrap();
    assert_eq!(audit.len(), 4);
    assert!(audit.iter().all(|a| a.at >= T0));
    let alerts = s.list_alerts(None, None, 100).await.unwrap();
    assert_eq!(alerts.len(), 4);
    assert!(alerts.iter().all(|a| a.alert.created_at >= T0));
    // A second pass finds nothing more.
    for kind in RetentionKind::ALL {
        assert_eq!(s.prune_batch(kind, T0, 500).await.unwrap(), 0, "{kind:?}");
    }
}
store_test!(reports_audit_alerts);

/// The DNSBL monitor's history goes by age (it has no key column: each backend's row address
/// picks the batch); the latest answer per IP and zone stays whatever its age.
async fn dnsbl_history(db: &TestDb) {
    let s = &db.store;
    for i in 0..5 {
        let at = T0 - 3 + i; // three older than the cutoff
        s.record_dnsbl_check(&DnsblCheck {
            ip: "127.0.0.2".into(),
            zone: "zen.test".into(),
            checked_at: at,
            status: if i == 4 { "listed" } else { "clean" }.into(),
            code: None,
            reason: None,
        })
        .await
        .unwrap();
    }
    // An old latest answer of another IP: its one history row goes, its state stays.
    s.record_dnsbl_check(&DnsblCheck {
        ip: "127.0.0.3".into(),
        zone: "zen.test".into(),
        checked_at: T0 - 10 * DAY,
        status: "clean".into(),
        code: None,
        reason: None,
    })
    .await
    .unwrap();
    assert_eq!(
        prune_all(db, RetentionKind::DnsblChecks, 2).await,
        vec![2, 2, 0]
    );
    let left = s.dnsbl_history(None, 100).await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|c| c.checked_at >= T0));
    let state = s.dnsbl_state().await.unwrap();
    assert_eq!(state.len(), 2, "the latest answers stay: {state:?}");
    assert_eq!(RetentionKind::DnsblChecks.key(), "reports");
}
store_test!(dnsbl_history);
