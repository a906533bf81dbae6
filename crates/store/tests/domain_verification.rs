//! Domain verification and forwarding connectors on every backend (SPEC §9): a pending domain
//! is nobody's sender until verified; the lookups the subdomain rule needs; conflicts that never
//! name the owner; the `forwarding` mark kept.

mod common;

use common::TestDb;
use outguard_store::{StoreError, normalize_domain};
use outguard_types::model::DomainStatus;

const NOW: i64 = 1_700_000_000_000;

async fn pending_until_verified(db: &TestDb) {
    let s = &db.store;
    s.add_tenant("acme", NOW).await.unwrap();
    s.add_tenant("globex", NOW).await.unwrap();
    let g = s.add_domain("globex", "globex.example").await.unwrap();
    assert_eq!(g.status, DomainStatus::Verified);
    assert_eq!(g.verification_token, None);

    let p = s
        .add_pending_domain("acme", "PayPal.com.", "tok123")
        .await
        .unwrap();
    assert_eq!(p.domain, "paypal.com");
    assert_eq!(p.status, DomainStatus::Pending);
    assert_eq!(p.verification_token.as_deref(), Some("tok123"));
    assert_eq!(s.domain("paypal.com").await.unwrap(), Some(p.clone()));
    // Claimed, so taken; but nobody's sender yet.
    assert_eq!(
        s.tenant_of_domain("paypal.com").await.unwrap().as_deref(),
        Some("acme")
    );
    assert_eq!(
        s.verified_tenant_of_domain("paypal.com").await.unwrap(),
        None
    );
    assert_eq!(
        s.verified_tenant_of_domain("GLOBEX.example.")
            .await
            .unwrap()
            .as_deref(),
        Some("globex")
    );
    let pending: Vec<String> = s
        .list_pending_domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.domain)
        .collect();
    assert_eq!(pending, ["paypal.com"]);

    // A duplicate is refused without naming the owner.
    let e = s.add_domain("acme", "globex.example").await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert!(!e.to_string().contains("globex "), "{e}");
    assert!(e.to_string().contains("not available"), "{e}");

    s.mark_domain_verified("paypal.com").await.unwrap();
    let v = s.domain("paypal.com").await.unwrap().unwrap();
    assert_eq!(v.status, DomainStatus::Verified);
    assert_eq!(v.verification_token, None);
    assert_eq!(
        s.verified_tenant_of_domain("paypal.com")
            .await
            .unwrap()
            .as_deref(),
        Some("acme")
    );
    assert!(s.list_pending_domains().await.unwrap().is_empty());
    assert!(matches!(
        s.mark_domain_verified("nope.example").await,
        Err(StoreError::NotFound { .. })
    ));
}
store_test!(pending_until_verified);

async fn related_domains_both_ways(db: &TestDb) {
    let s = &db.store;
    s.add_tenant("globex", NOW).await.unwrap();
    s.add_domain("globex", "globex.example").await.unwrap();
    s.add_domain("globex", "deep.mail.other.example")
        .await
        .unwrap();
    // `_` is a LIKE wildcard: "sub.xyglobex.example" is no subdomain of "x_globex.example".
    s.add_domain("globex", "sub.xyglobex.example")
        .await
        .unwrap();
    let names = |v: Vec<outguard_types::model::Domain>| -> Vec<String> {
        let mut n: Vec<String> = v.into_iter().map(|d| d.domain).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(s.related_domains("mail.globex.example").await.unwrap()),
        ["globex.example"]
    );
    assert_eq!(
        names(s.related_domains("other.example").await.unwrap()),
        ["deep.mail.other.example"]
    );
    assert_eq!(
        names(s.related_domains("globex.example").await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        names(s.related_domains("x_globex.example").await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(normalize_domain("A.Example.").unwrap(), "a.example");
    assert!(matches!(
        normalize_domain("not a domain"),
        Err(StoreError::Invalid { .. })
    ));
}
store_test!(related_domains_both_ways);

/// Issue 18: verified-domain owners are cached per handle (two reads per message otherwise).
/// A change through the same handle is seen at once; one made through another handle (another
/// node) within the cache's age of one second, never later.
async fn domain_owner_cache_follows_changes(db: &TestDb) {
    let s = &db.store;
    let other = outguard_store::Store::open(&db.url).await.unwrap();
    s.add_tenant("cached", 1).await.unwrap();
    assert_eq!(
        s.verified_tenant_of_domain("c.example").await.unwrap(),
        None
    );
    s.add_domain("cached", "c.example").await.unwrap();
    assert_eq!(
        s.verified_tenant_of_domain("c.example")
            .await
            .unwrap()
            .as_deref(),
        Some("cached"),
        "the writing handle sees its own change at once"
    );
    assert_eq!(
        other
            .verified_tenant_of_domain("c.example")
            .await
            .unwrap()
            .as_deref(),
        Some("cached")
    );
    other.remove_domain("c.example").await.unwrap();
    let t = std::time::Instant::now();
    while s
        .verified_tenant_of_domain("c.example")
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            t.elapsed() < std::time::Duration::from_millis(1500),
            "a domain removed on another node is still an owner after {:?}",
            t.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    other.close().await;
}
store_test!(domain_owner_cache_follows_changes);
