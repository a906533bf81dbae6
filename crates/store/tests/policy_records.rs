//! Outbound spam policy records on every backend: policies and tenant defaults with their
//! validation and change counter, restrictions (insert, lift, history, the lift rules' inputs)
//! and alerts (list, ack, daily counts).

mod common;

use common::TestDb;
use outguard_policy::restriction::{check_lift, exempt_today, lift};
use outguard_policy::{
    Alert, AlertKind, LimitKind, Measure, Restriction, RestrictionReason, Subject,
    next_utc_midnight,
};
use outguard_store::StoreError;
use outguard_types::model::Role;
use outguard_types::policy::{Policy, PolicyScope, PolicySettings, ThresholdAction, select_policy};

// 2026-11-23 18:00:00 UTC
const NOW: i64 = 1_795_456_800_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn scope(senders: &[&str], domains: &[&str]) -> PolicyScope {
    PolicyScope {
        senders: senders.iter().map(|s| s.to_string()).collect(),
        domains: domains.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn policy(name: &str, priority: u32, scope: PolicyScope) -> Policy {
    let mut settings = PolicySettings::default();
    settings
        .set_assignment("recipient_limit_external_per_hour=50")
        .unwrap();
    settings.set_assignment("spam_ratio=0.25").unwrap();
    Policy {
        name: name.into(),
        priority,
        scope,
        settings,
    }
}

async fn policies_round_trip(db: &TestDb) {
    let s = &db.store;
    s.add_tenant("acme", NOW).await.unwrap();
    s.add_tenant("globex", NOW).await.unwrap();
    let v0 = s.policies_version().await.unwrap();
    assert!(s.list_policies("acme").await.unwrap().is_empty());
    assert_eq!(
        s.tenant_default("acme").await.unwrap(),
        PolicySettings::default()
    );

    let sales = policy("sales", 5, scope(&[], &["sales.acme.example"]));
    let ceo = policy("ceo", 1, scope(&["ceo@acme.example"], &[]));
    s.put_policy("acme", &sales).await.unwrap();
    s.put_policy("acme", &ceo).await.unwrap();
    let v1 = s.policies_version().await.unwrap();
    assert!(v1 > v0, "a change moves the version ({v0} -> {v1})");
    let list = s.list_policies("acme").await.unwrap();
    assert_eq!(list, vec![ceo.clone(), sales.clone()], "priority order");
    assert_eq!(
        list[1].settings.spam_ratio,
        Some(0.25),
        "f64 settings round-trip"
    );
    assert!(s.list_policies("globex").await.unwrap().is_empty());
    assert_eq!(
        select_policy(&list, "x@eu.sales.acme.example").map(|p| p.name.as_str()),
        Some("sales")
    );

    // Same priority, another name: Conflict naming both; nothing changes.
    let e = s
        .put_policy("acme", &policy("other", 5, PolicyScope::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { what } if what.contains("5") && what.contains("sales")),
        "{e}"
    );
    // Replacing a policy by name may keep or move its priority.
    let mut moved = sales.clone();
    moved.priority = 7;
    s.put_policy("acme", &moved).await.unwrap();
    assert_eq!(s.policy("acme", "sales").await.unwrap(), Some(moved));
    // Another tenant may use the same priorities and names.
    s.put_policy("globex", &policy("sales", 1, PolicyScope::default()))
        .await
        .unwrap();

    let mut bad = policy("bad", 9, PolicyScope::default());
    bad.settings.recipient_limit_per_day = Some(20_000);
    let e = s.put_policy("acme", &bad).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid { what } if what.contains("recipient_limit_per_day")),
        "{e}"
    );
    assert!(matches!(
        s.put_policy("acme", &policy("default", 9, PolicyScope::default()))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.put_policy("nope", &policy("x", 1, PolicyScope::default()))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.list_policies("acme").await.unwrap().len(), 2);

    // Tenant default.
    let mut d = PolicySettings::default();
    d.set_assignment("action_when_threshold_reached=block_user")
        .unwrap();
    d.set_assignment("notify_recipients=admin@acme.example")
        .unwrap();
    d.set_assignment("reject_score=12.5").unwrap();
    let before = s.policies_version().await.unwrap();
    s.set_tenant_default("acme", &d).await.unwrap();
    assert!(s.policies_version().await.unwrap() > before);
    assert_eq!(s.tenant_default("acme").await.unwrap(), d);
    assert_eq!(
        s.list_policies("acme").await.unwrap().len(),
        2,
        "the default is not a custom policy"
    );
    d.action_when_threshold_reached = Some(ThresholdAction::Alert);
    s.set_tenant_default("acme", &d).await.unwrap();
    assert_eq!(
        s.tenant_default("acme")
            .await
            .unwrap()
            .action_when_threshold_reached,
        Some(ThresholdAction::Alert)
    );
    let mut bad = d.clone();
    bad.spam_ratio = Some(3.0);
    assert!(matches!(
        s.set_tenant_default("acme", &bad).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.remove_policy("acme", "default").await,
        Err(StoreError::Invalid { .. })
    ));

    s.remove_policy("acme", "ceo").await.unwrap();
    assert!(matches!(
        s.remove_policy("acme", "ceo").await,
        Err(StoreError::NotFound { .. })
    ));
    let names: Vec<_> = s
        .list_policies("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["sales"]);
}
store_test!(policies_round_trip);

/// Two writers racing for the same priority: exactly one wins.
async fn policy_priority_race(db: &TestDb) {
    let s = &db.store;
    s.add_tenant("acme", NOW).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.put_policy("acme", &policy(&format!("p{i}"), 3, PolicyScope::default()))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(s.list_policies("acme").await.unwrap().len(), 1);
}
store_test!(policy_priority_race);

fn restriction(subject: Subject, limit: LimitKind, at: i64, for_today: bool) -> Restriction {
    let action = if for_today {
        ThresholdAction::BlockUserForToday
    } else {
        ThresholdAction::BlockUser
    };
    let mut reason = RestrictionReason::new(
        limit,
        vec![Measure::new("external recipients in last hour", 501, 500)],
    );
    reason.top_spam_reasons = vec!["URL_SHORTENER".into()];
    reason.sample_message_ids = vec!["m1".into(), "m2".into()];
    Restriction::for_action(action, subject, "acme", reason, at).unwrap()
}

async fn restrictions_and_lifts(db: &TestDb) {
    let s = &db.store;
    let user = Subject::Account("Bulk@Acme.example".into());
    let v0 = s.restrictions_version().await.unwrap();
    let r1 = restriction(user.clone(), LimitKind::ExternalPerHour, NOW, true);
    let id1 = s.insert_restriction(&r1).await.unwrap();
    let v1 = s.restrictions_version().await.unwrap();
    assert!(v1 > v0);
    let got = s.restriction(&id1).await.unwrap().unwrap();
    assert_eq!(got.restriction, r1, "every field round-trips");
    assert_eq!(s.restriction("nope").await.unwrap(), None);

    // An older block-for-today that expired, another tenant's block, a tenant block.
    let old = restriction(user.clone(), LimitKind::PerDay, NOW - 2 * DAY, true);
    s.insert_restriction(&old).await.unwrap();
    let mut other = restriction(
        Subject::Account("x@globex.example".into()),
        LimitKind::SpamPerHour,
        NOW - HOUR,
        false,
    );
    other.tenant = "globex".into();
    let id_other = s.insert_restriction(&other).await.unwrap();
    let tenant_r = Restriction::tenant(
        "acme",
        RestrictionReason::new(LimitKind::TenantSpamPerHour, vec![]),
        NOW + 1,
    );
    s.insert_restriction(&tenant_r).await.unwrap();

    let active: Vec<_> = s
        .active_restrictions(NOW + 2)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active.len(), 3, "the expired one is not active");
    assert!(active.contains(&id1) && active.contains(&id_other));
    // At midnight the block-for-today ends.
    let at_midnight = s.active_restrictions(next_utc_midnight(NOW)).await.unwrap();
    assert_eq!(at_midnight.len(), 2);

    // Per tenant and active-only listings, newest first.
    let acme = s.list_restrictions_at(Some("acme"), None).await.unwrap();
    assert_eq!(acme.len(), 3);
    assert!(acme[0].restriction.created_at >= acme[1].restriction.created_at);
    assert_eq!(
        s.list_restrictions_at(Some("acme"), Some(NOW + 2))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.list_restrictions(None, false).await.unwrap().len(), 4);

    // History of the account from the start of today: today's one, not the old expired one;
    // the subject matches case-insensitively.
    let day = outguard_policy::restriction::utc_day_start(NOW);
    let hist = s
        .restriction_history(&Subject::Account("bulk@acme.EXAMPLE".into()), day)
        .await
        .unwrap();
    assert_eq!(hist, vec![r1.clone()]);
    assert_eq!(
        s.active_restrictions_of(&user, NOW + 5).await.unwrap()[0].id,
        id1
    );

    // Lift as a tenant admin, obeying the rules; the version moves.
    let done = s.lifts_today(&user, NOW + 10).await.unwrap();
    assert_eq!(done, 0);
    check_lift(&r1, Role::TenantAdmin, done, 3, "fixed", NOW + 10).unwrap();
    let lifted = lift(&r1, "admin@acme.example", "fixed", NOW + 10);
    s.update_restriction(&id1, &lifted).await.unwrap();
    assert!(s.restrictions_version().await.unwrap() > v1);
    assert_eq!(
        s.restriction(&id1).await.unwrap().unwrap().restriction,
        lifted
    );
    assert!(
        !s.active_restrictions(NOW + 11)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == id1)
    );
    assert_eq!(s.lifts_today(&user, NOW + 20).await.unwrap(), 1);
    assert_eq!(
        s.lifts_today(&user, next_utc_midnight(NOW)).await.unwrap(),
        0,
        "a new UTC day"
    );
    // The lifted one stays in today's history: the relay must not re-restrict by that limit.
    let hist = s.restriction_history(&user, day).await.unwrap();
    assert_eq!(
        exempt_today(&hist, &user, NOW + 30),
        vec![LimitKind::ExternalPerHour]
    );
    assert!(matches!(
        s.update_restriction("nope", &lifted).await,
        Err(StoreError::NotFound { .. })
    ));

    // A restriction created yesterday and lifted today is in today's history too.
    let y = restriction(user.clone(), LimitKind::SpamRatio, NOW - DAY, false);
    let yid = s.insert_restriction(&y).await.unwrap();
    s.update_restriction(&yid, &lift(&y, "operator", "ok", NOW + 40))
        .await
        .unwrap();
    assert_eq!(s.restriction_history(&user, day).await.unwrap().len(), 2);
    assert_eq!(s.lifts_today(&user, NOW + 50).await.unwrap(), 2);

    // The cache's view: in force now, or created / lifted since the given time.
    let current = s.current_restrictions(day, NOW + 60).await.unwrap();
    let ids: Vec<_> = current.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&id1.as_str()) && ids.contains(&yid.as_str()));
    assert!(ids.contains(&id_other.as_str()));
    assert_eq!(current.len(), 4, "the old expired one is left out");

    // JSON for the API: flat, with the id.
    let j = serde_json::to_value(&got).unwrap();
    assert_eq!(j["id"], id1.as_str());
    assert_eq!(j["subject"]["kind"], "account");
    assert_eq!(j["reason"]["limit"], "external_per_hour");
}
store_test!(restrictions_and_lifts);

fn alert(kind: AlertKind, tenant: Option<&str>, at: i64) -> Alert {
    Alert::new(
        kind,
        tenant,
        tenant.map(|_| Subject::Account("bulk@acme.example".into())),
        format!("{} alert", kind.as_str()),
        vec![Measure::new("recipients per day", 1001, 1000)],
        at,
    )
}

async fn alerts_list_ack_count(db: &TestDb) {
    let s = &db.store;
    let a1 = s
        .insert_alert(&alert(AlertKind::UserRestricted, Some("acme"), NOW))
        .await
        .unwrap();
    s.insert_alert(&alert(AlertKind::UserRestricted, Some("acme"), NOW + 1))
        .await
        .unwrap();
    s.insert_alert(&alert(
        AlertKind::SendingLimitExceeded,
        Some("acme"),
        NOW + 2,
    ))
    .await
    .unwrap();
    s.insert_alert(&alert(AlertKind::UserRestricted, Some("globex"), NOW + 3))
        .await
        .unwrap();
    s.insert_alert(&alert(AlertKind::IpListed, None, NOW + 4))
        .await
        .unwrap();
    s.insert_alert(&alert(AlertKind::UserRestricted, Some("acme"), NOW - DAY))
        .await
        .unwrap();

    let all = s.list_alerts(None, None, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].alert.kind, AlertKind::IpListed, "newest first");
    assert_eq!(all[0].alert.tenant, None);
    let acme = s.list_alerts(Some("acme"), None, 100).await.unwrap();
    assert_eq!(acme.len(), 4);
    let acme_ur = s
        .list_alerts(Some("acme"), Some(AlertKind::UserRestricted), 100)
        .await
        .unwrap();
    assert_eq!(acme_ur.len(), 3);
    assert_eq!(
        s.list_alerts(None, Some(AlertKind::UserRestricted), 2)
            .await
            .unwrap()
            .len(),
        2,
        "limit"
    );
    let first = s.alert(&a1).await.unwrap().unwrap();
    assert_eq!(
        first.alert,
        alert(AlertKind::UserRestricted, Some("acme"), NOW)
    );
    assert!(!first.acknowledged);

    s.ack_alert(&a1).await.unwrap();
    assert!(s.alert(&a1).await.unwrap().unwrap().acknowledged);
    assert!(matches!(
        s.ack_alert("nope").await,
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(
        s.alerts_today(Some("acme"), AlertKind::UserRestricted, NOW + 10)
            .await
            .unwrap(),
        2,
        "yesterday's does not count"
    );
    assert_eq!(
        s.alerts_today(None, AlertKind::IpListed, NOW + 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.alerts_today(Some("globex"), AlertKind::SendingLimitExceeded, NOW)
            .await
            .unwrap(),
        0
    );

    let j = serde_json::to_value(&first).unwrap();
    for key in [
        "id",
        "kind",
        "severity",
        "tenant",
        "subject",
        "summary",
        "measures",
        "created_at",
        "acknowledged",
    ] {
        assert!(j.get(key).is_some(), "{key} in {j}");
    }
}
store_test!(alerts_list_ack_count);

/// Removing a tenant takes its policies with it (a reused name starts clean).
async fn tenant_removal_drops_policies(db: &TestDb) {
    let s = &db.store;
    s.add_tenant("acme", NOW).await.unwrap();
    s.put_policy("acme", &policy("p", 1, PolicyScope::default()))
        .await
        .unwrap();
    s.set_tenant_default("acme", &PolicySettings::default())
        .await
        .unwrap();
    s.remove_tenant("acme").await.unwrap();
    s.add_tenant("acme", NOW).await.unwrap();
    assert!(s.list_policies("acme").await.unwrap().is_empty());
}
store_test!(tenant_removal_drops_policies);

/// Another handle on the same database (another node, or the CLI beside a running server) sees
/// a lift through the version row, and polling it is cheap.
async fn version_poll_across_handles(db: &TestDb) {
    let other = outguard_store::Store::open(&db.url).await.unwrap();
    let subject = Subject::Account("a@acme.example".into());
    let r = restriction(subject.clone(), LimitKind::PerDay, NOW, false);
    let seen = other.restrictions_version().await.unwrap();
    let id = db.store.insert_restriction(&r).await.unwrap();
    let after_insert = other.restrictions_version().await.unwrap();
    assert!(after_insert > seen);
    db.store
        .update_restriction(&id, &lift(&r, "cli", "ok", NOW + 1))
        .await
        .unwrap();
    assert!(other.restrictions_version().await.unwrap() > after_insert);
    assert!(other.active_restrictions(NOW + 2).await.unwrap().is_empty());

    const POLLS: u32 = 500;
    let start = std::time::Instant::now();
    for _ in 0..POLLS {
        other.restrictions_version().await.unwrap();
    }
    let per = start.elapsed() / POLLS;
    println!(
        "restrictions_version poll on {:?}: {per:?} per call ({POLLS} calls, debug build)",
        other.backend()
    );
    assert!(
        per < std::time::Duration::from_millis(5),
        "a poll must be cheap: {per:?}"
    );
    other.close().await;
}
store_test!(version_poll_across_handles);
