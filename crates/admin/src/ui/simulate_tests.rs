//! The "What would this change have done?" form on the policies screen (issue 22): shown to
//! every role that reads the tenant's policies (a reader too), CSRF-checked, scoped to the
//! user's own tenant, and answering with the result tables and the per-day chart.

use axum::body::Body;
use axum::http::{Request, header};
use outguard_types::model::{MessageRecord, MessageState, Submitter};
use outguard_types::time::now_ms;
use outguard_types::verdict::Class;

use super::tests::{ui_get, ui_login};
use crate::api::tests::{fixture, send};

fn record(id: &str, at: i64) -> MessageRecord {
    MessageRecord {
        id: id.into(),
        tenant: Some("a".into()),
        submitter: Submitter::Account("alice@a.example".into()),
        mail_from: "alice@a.example".into(),
        rcpts: vec!["x@dest.example".into(), "y@dest.example".into()],
        header_from: None,
        message_id_header: None,
        subject: None,
        size: 10,
        received_at: at,
        state: MessageState::Delivered,
        pool: Some("regular".into()),
        class: Some(Class::Clean),
        score: Some(0.0),
        node: "n1".into(),
        body_digest: None,
    }
}

#[tokio::test]
async fn policies_page_simulates_with_csrf_in_the_users_tenant() {
    let f = fixture().await;
    let now = now_ms();
    for i in 0..3 {
        f.relay
            .store
            .insert_message(&record(&format!("m{i}"), now - 3_600_000 + i * 60_000))
            .await
            .expect("message");
    }
    let sid = ui_login(&f, &f.reader, None).await;
    let (s, html) = ui_get(&f, &sid, "/policies").await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("What would this change have done?"), "{html}");
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = html[at..].split('"').next().expect("value").to_string();
    let post = |path: &str, form: String| {
        Request::post(path)
            .header(header::COOKIE, format!("og_session={sid}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("req")
    };
    let form = |csrf: &str| {
        format!("csrf={csrf}&since=1d&recipient_limit_external_per_hour=3&spam_ratio=")
    };
    assert_eq!(
        send(&f.app, post("/policies/a/simulate", form("wrong")))
            .await
            .0,
        403
    );
    let (s, body, _) = send(&f.app, post("/policies/a/simulate", form(&csrf))).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("id=\"simulate-chart\""), "{body}");
    assert!(body.contains("Restrictions per day"), "{body}");
    assert!(
        body.contains("alice@a.example") && body.contains("external_per_hour"),
        "{body}"
    );
    assert!(body.contains("1 new"), "{body}");
    // Another tenant is not found; a bad key names it.
    let (s, _, _) = send(&f.app, post("/policies/b/simulate", form(&csrf))).await;
    assert_eq!(s, 404);
    let bad = format!("csrf={csrf}&since=1d&bogus_key=1");
    let (s, body, _) = send(&f.app, post("/policies/a/simulate", bad)).await;
    assert_eq!(s, 422);
    assert!(String::from_utf8_lossy(&body).contains("bogus_key"));
}
