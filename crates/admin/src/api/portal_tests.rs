//! In-process tests of the restricted-users portal resources (`restricted`, `policies`,
//! `alerts`): their role matrix rows (operator / tenant admin / tenant reader × own / other
//! tenant), the lift rules (reason required, tenant restrictions operator-only, held mail
//! released, audited) and the policy body checks (unknown key → 422 naming it).

use outguard_policy::Subject;
use outguard_policy::{Alert, AlertKind, LimitKind, Measure, Restriction, RestrictionReason};
use outguard_types::model::MessageState;
use outguard_types::policy::ThresholdAction;

use super::tests::{Fixture, call, fixture};
use outguard_types::time::now_ms;

struct Seeded {
    f: Fixture,
    alert_a: String,
    alert_b: String,
}

fn account_restriction(addr: &str, tenant: &str, now: i64) -> Restriction {
    let reason = RestrictionReason::new(
        LimitKind::ExternalPerHour,
        vec![Measure::new("external recipients in last hour", 3, 2)],
    );
    Restriction::for_action(
        ThresholdAction::BlockUser,
        Subject::Account(addr.into()),
        tenant,
        reason,
        now,
    )
    .expect("block_user restricts")
}

async fn seeded() -> Seeded {
    let f = fixture().await;
    let st = &f.relay.store;
    let now = now_ms();
    st.insert_restriction(&account_restriction("alice@a.example", "a", now))
        .await
        .expect("restriction");
    st.insert_restriction(&account_restriction("carol@b.example", "b", now))
        .await
        .expect("restriction");
    let tenant = Restriction::tenant(
        "a",
        RestrictionReason::new(LimitKind::TenantSpamPerHour, vec![]),
        now,
    );
    st.insert_restriction(&tenant).await.expect("restriction");
    let alert = |t: &str| {
        Alert::new(
            AlertKind::UserRestricted,
            Some(t),
            None,
            format!("user of {t} restricted"),
            vec![],
            now,
        )
    };
    let alert_a = st.insert_alert(&alert("a")).await.expect("alert");
    let alert_b = st.insert_alert(&alert("b")).await.expect("alert");
    Seeded {
        f,
        alert_a,
        alert_b,
    }
}

#[tokio::test]
async fn role_matrix_of_the_portal_resources() {
    let Seeded {
        f,
        alert_a,
        alert_b,
    } = seeded().await;
    let reason = Some(r#"{"reason":"customer reset the password"}"#);
    // [operator, tenant_admin of a, tenant_reader of a]; rows run reader, admin, operator.
    let rows: Vec<(&str, String, Option<&str>, [u16; 3])> = vec![
        ("GET", "/api/v1/restricted".into(), None, [200, 200, 200]),
        (
            "GET",
            "/api/v1/restricted?tenant=b".into(),
            None,
            [200, 404, 404],
        ),
        // The admin lifts alice before the operator's rows run: then she is no longer restricted.
        (
            "GET",
            "/api/v1/restricted/alice@a.example".into(),
            None,
            [404, 200, 200],
        ),
        (
            "GET",
            "/api/v1/restricted/carol@b.example".into(),
            None,
            [200, 404, 404],
        ),
        (
            "GET",
            "/api/v1/restricted/nobody@a.example".into(),
            None,
            [404, 404, 404],
        ),
        (
            "POST",
            "/api/v1/restricted/alice@a.example/lift".into(),
            Some("{}"),
            [404, 422, 403],
        ),
        (
            "POST",
            "/api/v1/restricted/alice@a.example/lift".into(),
            Some(r#"{"reason":"  "}"#),
            [404, 422, 403],
        ),
        (
            "POST",
            "/api/v1/restricted/a/lift".into(),
            reason,
            [200, 403, 403],
        ),
        (
            "POST",
            "/api/v1/restricted/carol@b.example/lift".into(),
            reason,
            [200, 404, 404],
        ),
        (
            "POST",
            "/api/v1/restricted/alice@a.example/lift".into(),
            Some(r#"{"reason":"checked with the user","release_held":true}"#),
            [404, 200, 403],
        ),
        (
            "GET",
            "/api/v1/policies?tenant=a".into(),
            None,
            [200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/policies?tenant=b".into(),
            None,
            [200, 404, 404],
        ),
        ("GET", "/api/v1/policies".into(), None, [422, 200, 200]),
        (
            "GET",
            "/api/v1/policies/a/default".into(),
            None,
            [200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/policies/b/default".into(),
            None,
            [200, 404, 404],
        ),
        (
            "GET",
            "/api/v1/policies/a/nope".into(),
            None,
            [404, 404, 404],
        ),
        (
            "PUT",
            "/api/v1/policies/a/default".into(),
            Some(r#"{"recipient_limit_external_per_hour":7}"#),
            [200, 200, 403],
        ),
        (
            "PUT",
            "/api/v1/policies/b/default".into(),
            Some(r#"{"recipient_limit_external_per_hour":7}"#),
            [200, 404, 404],
        ),
        (
            "PUT",
            "/api/v1/policies/a/default".into(),
            Some(r#"{"bogus_key":1}"#),
            [422, 422, 422],
        ),
        (
            "PUT",
            "/api/v1/policies/a/default".into(),
            Some(r#"{"recipient_limit_per_day":20000}"#),
            [422, 422, 403],
        ),
        (
            "DELETE",
            "/api/v1/policies/a/default".into(),
            None,
            [422, 422, 403],
        ),
        (
            "DELETE",
            "/api/v1/policies/b/nope".into(),
            None,
            [404, 404, 404],
        ),
        ("GET", "/api/v1/alerts".into(), None, [200, 200, 200]),
        (
            "GET",
            "/api/v1/alerts?tenant=b".into(),
            None,
            [200, 404, 404],
        ),
        (
            "GET",
            "/api/v1/alerts?kind=nonsense".into(),
            None,
            [400, 400, 400],
        ),
        (
            "POST",
            format!("/api/v1/alerts/{alert_a}/ack"),
            None,
            [204, 204, 403],
        ),
        (
            "POST",
            format!("/api/v1/alerts/{alert_b}/ack"),
            None,
            [204, 404, 404],
        ),
        (
            "POST",
            "/api/v1/alerts/none/ack".into(),
            None,
            [404, 404, 404],
        ),
    ];
    let mut failures = Vec::new();
    for (role_idx, token) in [(2, &f.reader), (1, &f.admin), (0, &f.op)] {
        for (method, path, body, want) in &rows {
            let (got, json) = call(&f.app, method, path, Some(token), *body).await;
            if got.as_u16() != want[role_idx] {
                failures.push(format!(
                    "role #{role_idx} {method} {path}: got {got}, want {} ({json})",
                    want[role_idx]
                ));
            }
            if !got.is_success() && got.as_u16() != 204 {
                assert!(
                    json["error"]["message"].is_string(),
                    "{method} {path}: error body {json}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn lift_rules_release_and_audit() {
    let Seeded { f, .. } = seeded().await;
    // Lists never show another tenant's restrictions.
    let (_, list) = call(&f.app, "GET", "/api/v1/restricted", Some(&f.admin), None).await;
    let tenants: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["tenant"].as_str())
        .collect();
    assert_eq!(tenants, ["a", "a"], "{list}");

    let path = "/api/v1/restricted/alice@a.example/lift";
    let (s, body) = call(&f.app, "POST", path, Some(&f.admin), Some("{}")).await;
    assert_eq!(s, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("reason"),
        "{body}"
    );
    let (s, body) = call(
        &f.app,
        "POST",
        "/api/v1/restricted/a/lift",
        Some(&f.admin),
        Some(r#"{"reason":"please"}"#),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("operator")
    );

    assert_eq!(held_state(&f), Some(MessageState::Held));
    let (s, body) = call(
        &f.app,
        "POST",
        path,
        Some(&f.admin),
        Some(r#"{"reason":"password reset","release_held":true}"#),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["lifted"][0]["lifted"]["reason"], "password reset");
    assert_eq!(body["released"], serde_json::json!([f.qa]));
    assert_ne!(held_state(&f), Some(MessageState::Held), "released");
    let (s, _) = call(
        &f.app,
        "GET",
        "/api/v1/restricted/alice@a.example",
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(s, 404, "no longer restricted");
    let (s, hist) = call(
        &f.app,
        "GET",
        "/api/v1/restricted/alice@a.example?all=true",
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        hist[0]["lifted"]["by"]
            .as_str()
            .unwrap_or("")
            .starts_with("token:")
    );

    let log = f.relay.store.audit_log(20).await.expect("audit");
    let lift = log
        .iter()
        .find(|e| e.action == "restricted.lift")
        .expect("lift audited");
    assert_eq!(lift.target, "alice@a.example");
    assert!(lift.detail.contains("password reset"));
    assert!(
        log.iter()
            .any(|e| e.action == "queue.release" && e.target == f.qa)
    );
}

fn held_state(f: &Fixture) -> Option<MessageState> {
    f.relay
        .queue
        .list()
        .into_iter()
        .find(|i| i.id == f.qa)
        .map(|i| i.state)
}

#[tokio::test]
async fn policy_bodies_are_checked_and_saved() {
    let f = fixture().await;
    let (s, body) = call(
        &f.app,
        "PUT",
        "/api/v1/policies/a/default",
        Some(&f.admin),
        Some(r#"{"recipient_limit_external_per_hour":2,"frobnicate":true}"#),
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("frobnicate"),
        "{body}"
    );
    let (s, body) = call(
        &f.app,
        "PUT",
        "/api/v1/policies/a/default",
        Some(&f.admin),
        Some(r#"{"recipient_limit_external_per_hour":2,"action_when_threshold_reached":"block_user"}"#),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let got = f.relay.store.tenant_default("a").await.expect("default");
    assert_eq!(got.recipient_limit_external_per_hour, Some(2));
    let custom = r#"{"name":"bulk","priority":1,"scope":{"senders":["alice@a.example"]},"settings":{"recipient_limit_per_day":50}}"#;
    let (s, body) = call(
        &f.app,
        "POST",
        "/api/v1/policies/a",
        Some(&f.admin),
        Some(custom),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (s, _) = call(
        &f.app,
        "POST",
        "/api/v1/policies/a",
        Some(&f.admin),
        Some(custom),
    )
    .await;
    assert_eq!(s, 409);
    let (s, list) = call(&f.app, "GET", "/api/v1/policies", Some(&f.admin), None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "bulk"]);
    let (s, _) = call(
        &f.app,
        "DELETE",
        "/api/v1/policies/a/bulk",
        Some(&f.admin),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(
        f.relay
            .store
            .policy("a", "bulk")
            .await
            .expect("policy")
            .is_none()
    );
}
