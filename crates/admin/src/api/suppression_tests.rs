//! `/api/v1/suppressions` under SPEC §9 (issue 25): a tenant admin lists, adds and removes its
//! own tenant's suppressed recipients only (another tenant's read like missing ones), a reader
//! only lists, an operator manages every tenant's; bad input is 422; changes are audited.

use axum::http::StatusCode;
use serde_json::Value;

use super::tests::{call, fixture};

fn recipients(v: &Value) -> Vec<String> {
    let mut r: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    format!(
                        "{}/{}",
                        s["tenant"].as_str().unwrap_or(""),
                        s["recipient"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    r.sort();
    r
}

#[tokio::test]
async fn suppressions_follow_the_tenant_rules() {
    let f = fixture().await;
    let app = &f.app;
    // Operator adds for b; the admin of a adds for its own (tenant implied) and not for b.
    let (st, v) = call(
        app,
        "POST",
        "/api/v1/suppressions",
        Some(&f.op),
        Some(r#"{"tenant":"b","recipient":"Gone@Dest.Example","days":3,"reason":"asked"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["recipient"], "gone@dest.example");
    assert_eq!(v["source"], "manual");
    let (st, v) = call(
        app,
        "POST",
        "/api/v1/suppressions",
        Some(&f.admin),
        Some(r#"{"recipient":"gone@dest.example"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["tenant"], "a");
    let (st, _) = call(
        app,
        "POST",
        "/api/v1/suppressions",
        Some(&f.admin),
        Some(r#"{"tenant":"b","recipient":"x@dest.example"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(
        app,
        "POST",
        "/api/v1/suppressions",
        Some(&f.reader),
        Some(r#"{"recipient":"x@dest.example"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Bad input: not an address, days out of range, unknown field, control characters.
    for body in [
        r#"{"recipient":"nobody"}"#,
        r#"{"recipient":"x@dest.example","days":0}"#,
        r#"{"recipient":"x@dest.example","days":400}"#,
        r#"{"recipient":"x@dest.example","until":1}"#,
        r#"{"recipient":"x@dest.example","reason":"a\u001bb"}"#,
    ] {
        let (st, v) = call(
            app,
            "POST",
            "/api/v1/suppressions",
            Some(&f.admin),
            Some(body),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    }
    // Lists: the operator sees both tenants', a's roles only a's; asking for b is 404.
    let (_, v) = call(app, "GET", "/api/v1/suppressions", Some(&f.op), None).await;
    assert_eq!(
        recipients(&v),
        ["a/gone@dest.example", "b/gone@dest.example"]
    );
    for tok in [&f.admin, &f.reader] {
        let (st, v) = call(app, "GET", "/api/v1/suppressions", Some(tok), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(recipients(&v), ["a/gone@dest.example"]);
        let (st, _) = call(app, "GET", "/api/v1/suppressions?tenant=b", Some(tok), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    // Removal: b's is out of the admin's reach; a reader removes nothing.
    let (st, _) = call(
        app,
        "DELETE",
        "/api/v1/suppressions/b/gone@dest.example",
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(
        app,
        "DELETE",
        "/api/v1/suppressions/a/gone@dest.example",
        Some(&f.reader),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(
        app,
        "DELETE",
        "/api/v1/suppressions/a/GONE@dest.example",
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(
        app,
        "DELETE",
        "/api/v1/suppressions/a/gone@dest.example",
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(
        app,
        "DELETE",
        "/api/v1/suppressions/b/gone@dest.example",
        Some(&f.op),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, v) = call(app, "GET", "/api/v1/suppressions", Some(&f.op), None).await;
    assert!(recipients(&v).is_empty(), "{v}");
    // Audited.
    let (_, v) = call(app, "GET", "/api/v1/audit", Some(&f.op), None).await;
    let text = v.to_string();
    for action in ["suppression.add", "suppression.remove"] {
        assert!(text.contains(action), "{action} not audited: {text}");
    }
}

/// The UI page: a tenant admin sees its own tenant's suppressed recipients only, and removes one
/// with the form (CSRF required).
#[tokio::test]
async fn the_ui_page_lists_and_removes_in_scope() {
    use axum::body::Body;
    use axum::http::{Request, header};

    use crate::ui::tests::{ui_get, ui_login};

    let f = fixture().await;
    for (t, r) in [("a", "gone-a@dest.example"), ("b", "gone-b@dest.example")] {
        let body = format!(r#"{{"tenant":"{t}","recipient":"{r}"}}"#);
        let (st, v) = call(
            &f.app,
            "POST",
            "/api/v1/suppressions",
            Some(&f.op),
            Some(&body),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let sid = ui_login(&f, &f.admin, None).await;
    let (s, page) = ui_get(&f, &sid, "/suppressions").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("gone-a@dest.example"), "{page}");
    assert!(!page.contains("gone-b@dest.example"), "{page}");
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = page[at..].split('"').next().unwrap_or("").to_string();
    let post = |form: String| {
        Request::post("/suppressions/a/gone-a@dest.example/remove")
            .header(header::COOKIE, format!("og_session={sid}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("req")
    };
    let (s, _, _) = super::tests::send(&f.app, post("csrf=wrong".into())).await;
    assert_ne!(s.as_u16() / 100, 3, "a wrong CSRF token removes nothing");
    let (s, _, _) = super::tests::send(&f.app, post(format!("csrf={csrf}"))).await;
    assert_eq!(s.as_u16() / 100, 3, "redirect after removal");
    let (_, page) = ui_get(&f, &sid, "/suppressions").await;
    assert!(page.contains("No suppressed recipients."), "{page}");
}
