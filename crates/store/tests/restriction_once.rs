//! The single decider for a restriction (cluster mode, SPEC §3/§6) on every backend: however
//! many sessions or nodes race to restrict one subject, `insert_restriction_once` stores one
//! record, so the alert and the notification go out once; a lifted or expired one does not
//! stand in the way of the next.

mod common;

use common::TestDb;
use outguard_policy::restriction::lift;
use outguard_policy::{LimitKind, Measure, Restriction, RestrictionReason, Subject};
use outguard_types::policy::ThresholdAction;

// 2026-11-23 18:00:00 UTC
const NOW: i64 = 1_795_456_800_000;

fn restriction(who: &str, at: i64) -> Restriction {
    let reason = RestrictionReason::new(
        LimitKind::ExternalPerHour,
        vec![Measure::new("external recipients in last hour", 101, 100)],
    );
    Restriction::for_action(
        ThresholdAction::BlockUser,
        Subject::Account(who.into()),
        "acme",
        reason,
        at,
    )
    .expect("a restricting action")
}

async fn one_decider_among_racers(db: &TestDb) {
    // 16 racers on 4 handles (as if 4 nodes), all for the same subject.
    let mut handles = vec![db.store.clone()];
    for _ in 0..3 {
        handles.push(
            outguard_store::Store::open(&db.url)
                .await
                .expect("second handle"),
        );
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = handles[i % handles.len()].clone();
        tasks.push(tokio::spawn(async move {
            s.insert_restriction_once(&restriction("Bulk@Acme.example", NOW + i as i64))
                .await
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        if let Some(id) = t.await.expect("task").expect("insert") {
            won.push(id);
        }
    }
    assert_eq!(won.len(), 1, "exactly one racer decides: {won:?}");
    let active = db
        .store
        .active_restrictions(NOW + 100)
        .await
        .expect("active");
    assert_eq!(active.len(), 1, "{active:?}");

    // Another subject is independent.
    let other = db
        .store
        .insert_restriction_once(&restriction("x@acme.example", NOW))
        .await
        .expect("insert");
    assert!(other.is_some());

    // Once lifted, the next crossing restricts again.
    let id = &won[0];
    let r = db
        .store
        .restriction(id)
        .await
        .expect("get")
        .expect("stored")
        .restriction;
    db.store
        .update_restriction(id, &lift(&r, "admin", "ok", NOW + 200))
        .await
        .expect("lift");
    let again = db
        .store
        .insert_restriction_once(&restriction("bulk@acme.example", NOW + 300))
        .await
        .expect("insert");
    assert!(
        again.is_some(),
        "a lifted restriction does not block the next one"
    );
    let dup = db
        .store
        .insert_restriction_once(&restriction("bulk@acme.example", NOW + 301))
        .await
        .expect("insert");
    assert!(dup.is_none(), "but the new one does");
    for h in handles.into_iter().skip(1) {
        h.close().await;
    }
}
store_test!(one_decider_among_racers);
