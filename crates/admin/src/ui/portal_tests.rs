//! In-process tests of the restricted-users, alerts and policies pages: tenant scope, lift with
//! a reason (CSRF and reason required), alert acknowledgement, and editing the tenant default.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use outguard_policy::{
    Alert, AlertKind, LimitKind, Measure, Restriction, RestrictionReason, Subject,
};
use outguard_types::policy::ThresholdAction;

use super::tests::{ui_get, ui_login};
use crate::api::tests::{Fixture, fixture, send};
use outguard_types::time::now_ms;

fn restriction(addr: &str, tenant: &str) -> Restriction {
    let mut reason = RestrictionReason::new(
        LimitKind::ExternalPerHour,
        vec![Measure::new("external recipients in last hour", 3, 2)],
    );
    reason.sample_message_ids = vec!["m-sample-1".into()];
    Restriction::for_action(
        ThresholdAction::BlockUser,
        Subject::Account(addr.into()),
        tenant,
        reason,
        now_ms(),
    )
    .expect("restriction")
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    page[at..].split('"').next().unwrap_or("").to_string()
}

async fn post(f: &Fixture, sid: &str, path: &str, form: &str) -> (StatusCode, String) {
    let req = Request::post(path)
        .header(header::COOKIE, format!("og_session={sid}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .expect("req");
    let (s, body, _) = send(&f.app, req).await;
    (s, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn restricted_page_lifts_with_a_reason() {
    let f = fixture().await;
    let st = &f.relay.store;
    st.insert_restriction(&restriction("alice@a.example", "a"))
        .await
        .expect("r");
    st.insert_restriction(&restriction("carol@b.example", "b"))
        .await
        .expect("r");
    let sid = ui_login(&f, &f.admin, None).await;
    let (s, page) = ui_get(&f, &sid, "/restricted").await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("alice@a.example") && !page.contains("carol@b.example"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/trace/m-sample-1\""),
        "sample ids link to the trace"
    );
    assert!(
        page.contains("<label for=\"r0-reason\">"),
        "labelled reason field"
    );
    let csrf = csrf_of(&page);
    let path = "/restricted/alice@a.example/lift";
    assert_eq!(post(&f, &sid, path, "reason=x").await.0, 403, "no CSRF");
    let (s, body) = post(&f, &sid, path, &format!("csrf={csrf}&reason=")).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(
        post(
            &f,
            &sid,
            "/restricted/carol@b.example/lift",
            &format!("csrf={csrf}&reason=x")
        )
        .await
        .0,
        404,
        "another tenant's user"
    );
    let (s, _) = post(
        &f,
        &sid,
        path,
        &format!("csrf={csrf}&reason=reset+password&release_held=on"),
    )
    .await;
    assert_eq!(s, 303);
    let (_, page) = ui_get(&f, &sid, "/restricted?lifted=alice@a.example").await;
    assert!(page.contains("was lifted"), "{page}");
    assert!(
        !page.contains("<th scope=\"row\">alice@a.example"),
        "gone from the list: {page}"
    );
    let active = st.active_restrictions(now_ms()).await.expect("active");
    assert_eq!(active.len(), 1, "only carol's remains");
}

#[tokio::test]
async fn alerts_and_policies_pages() {
    let f = fixture().await;
    let st = &f.relay.store;
    let alert = Alert::new(
        AlertKind::UserRestricted,
        Some("a"),
        None,
        "alice restricted".into(),
        vec![],
        now_ms(),
    );
    let id = st.insert_alert(&alert).await.expect("alert");
    let other = Alert::new(
        AlertKind::UserRestricted,
        Some("b"),
        None,
        "carol restricted".into(),
        vec![],
        now_ms(),
    );
    st.insert_alert(&other).await.expect("alert");
    let sid = ui_login(&f, &f.admin, None).await;
    let (s, page) = ui_get(&f, &sid, "/alerts").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("alice restricted") && !page.contains("carol restricted"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let (s, _) = post(
        &f,
        &sid,
        &format!("/alerts/{id}/ack"),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(s, 303);
    assert!(st.alert(&id).await.expect("a").expect("a").acknowledged);

    let (s, page) = ui_get(&f, &sid, "/policies").await;
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("<label for=\"recipient_limit_external_per_hour\">"),
        "{page}"
    );
    let form = format!(
        "csrf={csrf}&recipient_limit_external_per_hour=2&action_when_threshold_reached=block_user&quarantine="
    );
    assert_eq!(
        post(&f, &sid, "/policies/a/default", "recipient_limit_per_day=1")
            .await
            .0,
        403
    );
    let (s, body) = post(&f, &sid, "/policies/a/default", &form).await;
    assert_eq!(s, 303, "{body}");
    let got = st.tenant_default("a").await.expect("default");
    assert_eq!(got.recipient_limit_external_per_hour, Some(2));
    assert_eq!(got.quarantine, None);
    let (s, _) = post(&f, &sid, "/policies/b/default", &form).await;
    assert_eq!(s, 404, "another tenant's policy");
    let (s, _) = post(
        &f,
        &sid,
        "/policies/a/default",
        &format!("csrf={csrf}&spam_ratio=7"),
    )
    .await;
    assert_eq!(s, 422);
}
