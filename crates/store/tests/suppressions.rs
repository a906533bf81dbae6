//! Suppressed recipients (issue 25) on both backends: per tenant, normalised, extended never
//! shortened, expired rows invisible and pruned, removed with their tenant.

mod common;

use common::TestDb;
use outguard_store::{StoreError, Suppression};

// 2026-11-23 18:00:00 UTC
const NOW: i64 = 1_795_456_800_000;
const DAY: i64 = 24 * 3600 * 1000;

fn s(tenant: &str, rcpt: &str, until: i64, source: &str) -> Suppression {
    Suppression {
        tenant: tenant.into(),
        recipient: rcpt.into(),
        until,
        created_at: NOW,
        source: source.into(),
        reason: "550 5.1.1 no such user".into(),
        message_id: Some("m1".into()),
    }
}

async fn per_tenant_lifecycle(db: &TestDb) {
    let st = &db.store;
    for t in ["acme", "globex"] {
        st.add_tenant(t, NOW).await.unwrap();
    }
    let got = st
        .suppress(&s("acme", "<Gone@Dest.Example>", NOW + 30 * DAY, "bounce"))
        .await
        .unwrap();
    assert_eq!(got.recipient, "gone@dest.example");
    assert_eq!(got.until, NOW + 30 * DAY);
    // Found whatever the case, for its tenant only.
    let hit = st
        .suppression("acme", "GONE@dest.example", NOW)
        .await
        .unwrap();
    assert_eq!(hit.map(|h| h.source), Some("bounce".into()));
    assert!(
        st.suppression("globex", "gone@dest.example", NOW)
            .await
            .unwrap()
            .is_none()
    );
    // A shorter one does not shorten it; its source and reason are taken.
    let again = st
        .suppress(&s("acme", "gone@dest.example", NOW + DAY, "dsn"))
        .await
        .unwrap();
    assert_eq!(
        (again.until, again.source.as_str()),
        (NOW + 30 * DAY, "dsn")
    );
    st.suppress(&s("globex", "old@dest.example", NOW + DAY, "manual"))
        .await
        .unwrap();
    assert_eq!(st.list_suppressions(None, NOW, 100).await.unwrap().len(), 2);
    let acme = st.list_suppressions(Some("acme"), NOW, 100).await.unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].recipient, "gone@dest.example");
    // Expired: invisible, then pruned.
    let later = NOW + 2 * DAY;
    assert!(
        st.suppression("globex", "old@dest.example", later)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        st.list_suppressions(None, later, 100).await.unwrap().len(),
        1
    );
    assert_eq!(st.prune_suppressions(later, 100).await.unwrap(), 1);
    // Removal: once, then NotFound; a bad address is Invalid.
    st.unsuppress("acme", "Gone@dest.example").await.unwrap();
    assert!(matches!(
        st.unsuppress("acme", "gone@dest.example").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        st.suppress(&s("acme", "no-at-sign", NOW + DAY, "manual"))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    // A removed tenant takes its suppressions along.
    st.suppress(&s("globex", "x@dest.example", NOW + DAY, "manual"))
        .await
        .unwrap();
    st.remove_tenant("globex").await.unwrap();
    assert!(
        st.list_suppressions(None, NOW, 100)
            .await
            .unwrap()
            .is_empty()
    );
}
store_test!(per_tenant_lifecycle);
