//! `/api/v1/compliance` and the compliance page under SPEC §9 (issue 25 part 4): a tenant role
//! sees its own tenant's bulk streams and complaint rate only (asking for another is 404), an
//! operator every tenant's or the one asked for; no token is 401.

use axum::http::StatusCode;
use outguard_policy::decide::keys;
use outguard_relay::fbl::rates::{COMPLAINT, SENT};
use outguard_store::BulkObservation;
use serde_json::Value;

use super::tests::{call, fixture};
use crate::ui::tests::{ui_get, ui_login};

fn tenants(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|t| t["tenant"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn compliance_follows_the_tenant_rules() {
    let f = fixture().await;
    let app = &f.app;
    let now = f.relay.clock.now_ms();
    for (t, domain, failure) in [
        (
            "a",
            "a.example",
            Some("dmarc: no DMARC record at _dmarc.a.example"),
        ),
        ("b", "b.example", None),
    ] {
        f.relay
            .store
            .record_bulk(&BulkObservation {
                tenant: t.into(),
                from_domain: domain.into(),
                why: "List-Unsubscribe header".into(),
                at: now,
                message_id: format!("m-{t}"),
                checks: r#"{"dkim":"pass","spf":"pass","dmarc":"fail","one_click":"pass"}"#.into(),
                action: "warn".into(),
                failure: failure.map(String::from),
            })
            .await
            .expect("record");
    }
    // Tenant a: 2 complaints for 1000 recipients (0.2 %: above the target, under the limit).
    let w = i64::try_from(f.relay.cfg.fbl.window.as_millis()).expect("window");
    let c = &f.relay.enforcer.counters;
    c.record(&keys::tenant("a", SENT), 1000, w, now)
        .await
        .expect("sent");
    c.record(&keys::tenant("a", COMPLAINT), 2, w, now)
        .await
        .expect("complaints");

    let (st, v) = call(app, "GET", "/api/v1/compliance", Some(&f.op), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(tenants(&v), ["a", "b"], "{v}");
    let a = &v[0];
    assert_eq!(a["complaint_rate"]["status"], "above_target", "{a}");
    assert_eq!(a["complaint_rate"]["sent"], 1000);
    assert_eq!(a["complaint_rate"]["target"], 0.001);
    assert_eq!(a["complaint_rate"]["limit"], 0.003);
    let s = &a["streams"][0];
    assert_eq!(s["from_domain"], "a.example", "{s}");
    assert_eq!(s["checks"]["dmarc"], "fail");
    assert_eq!(s["last_failure"]["message_id"], "m-a");
    assert_eq!(v[1]["complaint_rate"]["status"], "no_mail");
    assert!(v[1]["streams"][0].get("last_failure").is_none(), "{v}");

    let (st, v) = call(app, "GET", "/api/v1/compliance?tenant=b", Some(&f.op), None).await;
    assert_eq!((st, tenants(&v)), (StatusCode::OK, vec!["b".to_string()]));
    for token in [&f.admin, &f.reader] {
        let (st, v) = call(app, "GET", "/api/v1/compliance", Some(token), None).await;
        assert_eq!(
            (st, tenants(&v)),
            (StatusCode::OK, vec!["a".to_string()]),
            "{v}"
        );
        let (st, v) = call(app, "GET", "/api/v1/compliance?tenant=b", Some(token), None).await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "another tenant reads like a missing one: {v}"
        );
    }
    let (st, _) = call(
        app,
        "GET",
        "/api/v1/compliance?tenant=zz",
        Some(&f.op),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(app, "GET", "/api/v1/compliance", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // The page: the admin of a sees a's stream and rate, never b's.
    let sid = ui_login(&f, &f.admin, None).await;
    let (st, html) = ui_get(&f, &sid, "/compliance").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(
        html.contains("a.example") && html.contains("no DMARC record"),
        "{html}"
    );
    assert!(html.contains("0.200 %"), "{html}");
    assert!(!html.contains("b.example"), "{html}");
    let (st, _) = ui_get(&f, &sid, "/compliance?tenant=b").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let sid = ui_login(&f, &f.op, None).await;
    let (_, html) = ui_get(&f, &sid, "/compliance").await;
    assert!(
        html.contains("b.example") && html.contains("a.example"),
        "{html}"
    );
}
