//! Webhook subscriptions on every backend: create, list by tenant, get, delete, the change
//! counter other handles poll, and an unknown tenant.

mod common;

use common::TestDb;
use outguard_store::StoreError;

const NOW: i64 = 1_795_456_800_000;

async fn webhooks_round_trip(db: &TestDb) {
    let s = &db.store;
    s.add_tenant("acme", NOW).await.unwrap();
    s.add_tenant("globex", NOW).await.unwrap();
    let other = outguard_store::Store::open(&db.url).await.unwrap();
    let v0 = other.webhooks_version().await.unwrap();

    let kinds = vec!["user_restricted".to_string(), "ip_listed".to_string()];
    let a = s
        .create_webhook(
            Some("acme"),
            "http://127.0.0.1:9/a",
            "0123456789abcdef",
            &kinds,
            "token:t1",
            NOW,
        )
        .await
        .unwrap();
    let all = s
        .create_webhook(
            None,
            "http://127.0.0.1:9/all",
            "fedcba9876543210",
            &[],
            "cli",
            NOW + 1,
        )
        .await
        .unwrap();
    let g = s
        .create_webhook(
            Some("globex"),
            "http://127.0.0.1:9/g",
            "gggggggggggggggg",
            &[],
            "cli",
            NOW + 2,
        )
        .await
        .unwrap();
    let v1 = other.webhooks_version().await.unwrap();
    assert!(v1 > v0, "a create moves the version ({v0} -> {v1})");

    let got = s.webhook(&a.id).await.unwrap().expect("stored");
    assert_eq!(got, a);
    assert_eq!(got.kinds, kinds);
    assert_eq!(got.secret, "0123456789abcdef");
    assert_eq!(got.created_by, "token:t1");

    let ids =
        |v: Vec<outguard_store::StoredWebhook>| v.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_webhooks(Some("acme")).await.unwrap()),
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(s.list_webhooks(None).await.unwrap()),
        vec![a.id.clone(), all.id.clone(), g.id.clone()]
    );
    assert_eq!(s.webhook(&all.id).await.unwrap().unwrap().tenant, None);

    s.delete_webhook(&g.id).await.unwrap();
    assert!(other.webhooks_version().await.unwrap() > v1);
    assert!(s.webhook(&g.id).await.unwrap().is_none());
    assert!(matches!(
        s.delete_webhook(&g.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.create_webhook(
            Some("nope"),
            "http://h/",
            "0123456789abcdef",
            &[],
            "cli",
            NOW
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(other.list_webhooks(None).await.unwrap().len(), 2);

    // Removing a tenant takes its subscriptions with it (and moves the version).
    let v2 = other.webhooks_version().await.unwrap();
    s.remove_tenant("acme").await.unwrap();
    assert!(other.webhooks_version().await.unwrap() > v2);
    assert!(s.webhook(&a.id).await.unwrap().is_none());
    assert_eq!(
        ids(s.list_webhooks(None).await.unwrap()),
        vec![all.id.clone()]
    );
    other.close().await;
}
store_test!(webhooks_round_trip);
