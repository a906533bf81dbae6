//! Bulk streams (issue 25 part 4) on both backends: one row per tenant and From domain, the
//! latest checks, the latest failure kept as a sample when a later message passes, per-tenant
//! listing, removed with their tenant.

mod common;

use common::TestDb;
use outguard_store::BulkObservation;

// 2026-11-23 18:00:00 UTC
const NOW: i64 = 1_795_456_800_000;

fn obs(tenant: &str, domain: &str, at: i64, id: &str, failure: Option<&str>) -> BulkObservation {
    BulkObservation {
        tenant: tenant.into(),
        from_domain: domain.into(),
        why: "List-Unsubscribe header".into(),
        at,
        message_id: id.into(),
        checks: if failure.is_some() {
            r#"{"dkim":"pass","spf":"pass","dmarc":"fail","one_click":"pass"}"#.into()
        } else {
            r#"{"dkim":"pass","spf":"pass","dmarc":"pass","one_click":"pass"}"#.into()
        },
        action: if failure.is_some() { "warn" } else { "none" }.into(),
        failure: failure.map(String::from),
    }
}

async fn streams_keep_their_last_failure(db: &TestDb) {
    let st = &db.store;
    for t in ["acme", "globex"] {
        st.add_tenant(t, NOW).await.unwrap();
    }
    st.record_bulk(&obs(
        "acme",
        "News.Acme.Example",
        NOW,
        "m1",
        Some("dmarc: no record"),
    ))
    .await
    .unwrap();
    st.record_bulk(&obs("acme", "news.acme.example", NOW + 10, "m2", None))
        .await
        .unwrap();
    st.record_bulk(&obs("globex", "globex.example", NOW, "g1", None))
        .await
        .unwrap();
    let acme = st.list_bulk_streams(Some("acme")).await.unwrap();
    assert_eq!(acme.len(), 1, "{acme:?}");
    let s = &acme[0];
    assert_eq!(s.from_domain, "news.acme.example");
    assert_eq!((s.first_seen, s.last_seen), (NOW, NOW + 10));
    assert_eq!(s.last_message_id, "m2");
    assert_eq!(s.last_action, "none");
    assert!(s.checks.contains(r#""dmarc":"pass""#), "{}", s.checks);
    assert_eq!(s.failed_at, Some(NOW), "the failure sample survives a pass");
    assert_eq!(s.failed_message_id.as_deref(), Some("m1"));
    assert_eq!(s.failed_detail.as_deref(), Some("dmarc: no record"));
    assert_eq!(st.list_bulk_streams(None).await.unwrap().len(), 2);
    st.remove_tenant("globex").await.unwrap();
    let all = st.list_bulk_streams(None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].tenant, "acme");
}
store_test!(streams_keep_their_last_failure);
