//! End to end, the admin API and metrics on the real binary: a message submitted over SMTP is
//! found through the trace API with its timeline; tokens made through the API work, are scoped
//! and stop working the moment they are revoked; the audit log records the client IP; the
//! OpenAPI document and `/metrics` are served. (The role matrix and the OpenAPI-vs-routes check
//! run in-process: `src/api/tests.rs`.)

mod common;
mod web;

use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};
use web::api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_tokens_audit_and_metrics_over_http() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let op = relay
        .token
        .clone()
        .expect("first start prints an operator token");

    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "bob@a.example",
        &["x@dest.example"],
        &message("bob@a.example", "x@dest.example", "api e2e", "hello"),
    )
    .await;
    assert!(r.starts_with("250 "), "{r}");
    let id = queued_id(&r);

    // The trace writer batches; poll until the message and its delivery show up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let detail = loop {
        let d = api(http, "GET", &format!("/api/v1/messages/{id}"), &op, None).await;
        if d.status == 200 && d.json()["message"]["state"] == "delivered" {
            break d.json();
        }
        assert!(
            Instant::now() < deadline,
            "message {id} never traced as delivered: {} {}",
            d.status,
            d.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"received") && kinds.contains(&"delivered"),
        "{kinds:?}"
    );
    let found = api(
        http,
        "GET",
        "/api/v1/messages?from=bob@a.example&limit=5",
        &op,
        None,
    )
    .await
    .json();
    assert_eq!(found["messages"][0]["id"], id.as_str(), "{found}");

    // A tenant admin of b made through the API cannot see tenant a's message, then is revoked.
    let made = api(
        http,
        "POST",
        "/api/v1/tokens",
        &op,
        Some(r#"{"role":"tenant_admin","tenant":"b"}"#),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let (b_secret, b_id) = (
        made.json()["secret"].as_str().expect("secret").to_string(),
        made.json()["id"].as_str().expect("id").to_string(),
    );
    assert_eq!(
        api(
            http,
            "GET",
            &format!("/api/v1/messages/{id}"),
            &b_secret,
            None
        )
        .await
        .status,
        404
    );
    let listed = api(http, "GET", "/api/v1/messages", &b_secret, None)
        .await
        .json();
    assert!(!listed.to_string().contains(&id), "{listed}");
    assert_eq!(
        api(http, "DELETE", &format!("/api/v1/tokens/{b_id}"), &op, None)
            .await
            .status,
        204
    );
    let after = api(http, "GET", "/api/v1/messages", &b_secret, None).await;
    assert_eq!(
        (after.status, after.json()["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    // Audit: the revocation names the operator's token and the client's address.
    let store = outguard_store::Store::open(&format!(
        "sqlite://{}",
        sc.dir().join("data/outguard.db").display()
    ))
    .await
    .expect("store");
    let log = store.audit_log(10).await.expect("audit");
    let revoke = log
        .iter()
        .find(|e| e.action == "token.revoke")
        .expect("revoke audited");
    assert_eq!(
        (revoke.target.as_str(), revoke.ip.as_deref()),
        (b_id.as_str(), Some("127.0.0.1")),
        "{revoke:?}"
    );

    let doc = web::request(http, "GET", "/api/v1/openapi.json", &[], None)
        .await
        .json();
    assert!(
        doc["paths"]["/api/v1/messages/{id}"]["get"].is_object(),
        "{doc}"
    );
    // A refused sender and a refused AUTH, for the SMTP counters below.
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "carol@b.example",
        &["x@dest.example"],
        &message("carol@b.example", "x@dest.example", "spoof", "x"),
    )
    .await;
    assert!(r.starts_with("550 5.7.1"), "{r}");
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(("alice@a.example", "not-her-password")),
        "alice@a.example",
        &["x@dest.example"],
        &message("alice@a.example", "x@dest.example", "auth", "x"),
    )
    .await;
    assert!(r.starts_with("535"), "{r}");
    let metrics = web::request(http, "GET", "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    for want in [
        "outguard_build_info{version=\"",
        "outguard_smtp_sessions_total{listener=\"connector\"} 2\n",
        "outguard_smtp_sessions_total{listener=\"submission\"} 1\n",
        "code=\"550 5.7.1\"} 1\n",
        "outguard_auth_failures_total 1\n",
    ] {
        assert!(metrics.text().contains(want), "{want}: {}", metrics.text());
    }
    for family in [
        "# TYPE outguard_queue_depth gauge",
        "# TYPE outguard_retention_pruned_total counter",
        "# TYPE outguard_retention_last_pass_timestamp_seconds gauge",
    ] {
        assert!(
            metrics.text().contains(family),
            "{family}: {}",
            metrics.text()
        );
    }
    // The message above was scanned, and delivered in one attempt to its one recipient.
    for want in [
        "outguard_delivery_attempts_total{result=\"delivered\"} 1\n",
        "outguard_verdicts_total{verdict=\"clean\"} 1\n",
        "outguard_tenant_messages_total{tenant=\"a\",verdict=\"clean\"} 1\n",
        // Queue entry to the sink's 250 on loopback: well under a minute, over no time at all.
        "# TYPE outguard_delivery_seconds histogram\n",
        "outguard_delivery_seconds_bucket{le=\"60\"} 1\n",
        "outguard_delivery_seconds_bucket{le=\"+Inf\"} 1\n",
        "outguard_delivery_seconds_count 1\n",
        "outguard_restricted_current{subject=\"account\"} 0\n",
        "# TYPE outguard_restrictions_total counter\n",
    ] {
        assert!(metrics.text().contains(want), "{want}: {}", metrics.text());
    }
    let ui = web::request(http, "GET", "/", &[], None).await;
    assert_eq!((ui.status, ui.header("location")), (303, Some("/login")));
}

/// The value of cookie `name` set by a response.
fn set_cookie(r: &web::Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// UI sessions live in the store: a cookie from before a restart still works after it, and
/// logging out ends the session for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_session_survives_a_restart() {
    let sc = scene("").await;
    sc.provision().await;
    let mut relay = RelayProc::start(sc.dir());
    let op = relay.token.clone().expect("operator token");
    let http = relay.addr("http");
    let form = web::request(http, "GET", "/login", &[], None).await;
    let pre = set_cookie(&form, "og_login").expect("login cookie");
    let login = web::request(
        http,
        "POST",
        "/login",
        &[
            ("Cookie", &format!("og_login={pre}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(&format!("token={op}&csrf={pre}")),
    )
    .await;
    assert_eq!(login.status, 303, "{}", login.text());
    let sid = set_cookie(&login, "og_session").expect("session cookie");
    let cookie = format!("og_session={sid}");
    let page = web::request(http, "GET", "/", &[("Cookie", &cookie)], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Dashboard: all tenants"));

    assert!(relay.terminate().success(), "{}", relay.stderr());
    drop(relay);
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let page = web::request(http, "GET", "/", &[("Cookie", &cookie)], None).await;
    assert_eq!(page.status, 200, "the cookie still works after a restart");
    let html = page.text();
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = html[at..].split('"').next().expect("value").to_string();
    let out = web::request(
        http,
        "POST",
        "/logout",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(&format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(out.status, 303);
    let after = web::request(http, "GET", "/", &[("Cookie", &cookie)], None).await;
    assert_eq!(
        (after.status, after.header("location")),
        (303, Some("/login"))
    );
}
