//! `POST /api/v1/simulate` under SPEC §9 (issue 22): operators simulate every tenant or one;
//! a tenant admin and a tenant reader only their own tenant — the body's tenant is forced, and
//! naming another is 404 — and never see another tenant's traffic in the answer; the span is
//! bounded (422), and an unknown key or a bad value is 422 naming the key.

use axum::http::StatusCode;
use outguard_types::model::{MessageRecord, MessageState, Submitter};
use outguard_types::time::now_ms;
use outguard_types::verdict::Class;
use serde_json::Value;

use super::tests::{call, fixture};

fn record(id: &str, tenant: &str, from: &str, at: i64) -> MessageRecord {
    MessageRecord {
        id: id.into(),
        tenant: Some(tenant.into()),
        submitter: Submitter::Account(from.into()),
        mail_from: from.into(),
        rcpts: vec!["x@dest.example".into()],
        header_from: Some(from.into()),
        message_id_header: None,
        subject: None,
        size: 100,
        received_at: at,
        state: MessageState::Delivered,
        pool: Some("regular".into()),
        class: Some(Class::Clean),
        score: Some(0.0),
        node: "n1".into(),
        body_digest: None,
    }
}

/// The simulated restrictions' subjects, sorted.
fn restricted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["report"]["restrictions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["subject"]["id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

const TIGHT: &str = r#""settings":{"recipient_limit_external_per_hour":2}"#;

#[tokio::test]
async fn simulate_follows_the_tenant_rules() {
    let f = fixture().await;
    let app = &f.app;
    let now = now_ms();
    for i in 0..3 {
        let at = now - 30 * 60_000 + i * 60_000;
        for (t, who) in [("a", "alice@a.example"), ("b", "carol@b.example")] {
            f.relay
                .store
                .insert_message(&record(&format!("{t}{i}"), t, who, at))
                .await
                .expect("message");
        }
    }
    let post = |token: &str, body: String| {
        let token = token.to_string();
        async move { call(app, "POST", "/api/v1/simulate", Some(&token), Some(&body)).await }
    };
    // The operator: every tenant, or the one asked for.
    let (st, v) = post(f.op.as_str(), format!(r#"{{"since":"2h",{TIGHT}}}"#)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(restricted(&v), ["alice@a.example", "carol@b.example"]);
    let (st, v) = post(
        f.op.as_str(),
        format!(r#"{{"since":"2h","tenant":"b",{TIGHT}}}"#),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(restricted(&v), ["carol@b.example"]);
    // A tenant admin and a reader of a: their own tenant, forced; b is 404.
    for token in [f.admin.as_str(), f.reader.as_str()] {
        let (st, v) = post(token, format!(r#"{{"since":"2h",{TIGHT}}}"#)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(restricted(&v), ["alice@a.example"]);
        assert_eq!(v["report"]["transactions"], 3, "only tenant a's traffic");
        let (st, v) = post(token, format!(r#"{{"since":"2h","tenant":"b",{TIGHT}}}"#)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        assert!(!v.to_string().contains("carol"), "{v}");
    }
    // Unknown key, bad value, too long a span, not a duration, unknown field: 422 naming it.
    for (body, names) in [
        (r#"{"since":"2h","settings":{"bogus_key":1}}"#, "bogus_key"),
        (
            r#"{"since":"2h","settings":{"spam_ratio":3}}"#,
            "spam_ratio",
        ),
        (r#"{"since":"40d"}"#, "since"),
        (r#"{"since":"soon"}"#, "since"),
        (r#"{"since":"2h","extra":1}"#, "extra"),
    ] {
        let (st, v) = post(f.admin.as_str(), body.to_string()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(v.to_string().contains(names), "{body}: {v}");
    }
    // No token: 401. Read-only: nothing was restricted for real.
    let (st, _) = call(
        app,
        "POST",
        "/api/v1/simulate",
        None,
        Some(r#"{"since":"2h"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        f.relay
            .store
            .list_restrictions(None, false)
            .await
            .expect("list")
            .is_empty()
    );
}
