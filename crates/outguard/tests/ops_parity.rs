//! End to end, one management change leaves one and the same audit entry whichever interface
//! makes it (issue 15: each action exists once in `ops`, audited once). The same sequence of
//! changes — tenant add, account add, policy set, restriction lift, connector add, send-as add,
//! tenant remove — is made in three fresh scenes: by the CLI on the store (no server running),
//! by the CLI through a running server (`--server`), and by plain calls to the admin API. The
//! three audit logs must agree entry for entry on action, target and detail; only the actor
//! differs (`cli` on the store, `token:<id>` through the API) and the client address (the API
//! records it).

mod common;
mod web;

use std::process::Command;

use common::{BIN, RelayProc, Scene, scene};
use outguard_policy::{LimitKind, Measure, RestrictionReason};
use outguard_policy::{Restriction, Subject};
use outguard_store::Store;
use outguard_types::policy::ThresholdAction;
use web::api;

/// One audit entry as compared: action, target, detail (restriction ids normalised).
type Entry = (String, String, String);

/// The CLI verbs of the sequence (the API world makes the matching calls in `by_api`).
const VERBS: &[&[&str]] = &[
    &["tenant", "add", "c"],
    &["account", "add", "--tenant", "a", "dave@a.example"],
    &[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_per_day=200",
        "quarantine=on",
    ],
    &[
        "restricted",
        "lift",
        "bob@a.example",
        "--reason",
        "cleaned up",
    ],
    &[
        "connector",
        "add",
        "--tenant",
        "b",
        "10.9.8.0/24",
        "--limit-per-hour",
        "50",
    ],
    &["account", "send-as", "add", "alice@a.example", "@a.example"],
    &["tenant", "remove", "c"],
];

fn store_url(sc: &Scene) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        sc.dir().join("data/outguard.db").display()
    )
}

/// The provisioned scene plus an active restriction of bob@a.example; returns its id.
async fn prepare(sc: &Scene) -> String {
    sc.provision().await;
    let store = Store::open(&store_url(sc)).await.expect("store");
    let reason = RestrictionReason::new(
        LimitKind::ExternalPerHour,
        vec![Measure::new("external recipients in last hour", 501, 500)],
    );
    let now = outguard_types::time::now_ms();
    let r = Restriction::for_action(
        ThresholdAction::BlockUser,
        Subject::Account("bob@a.example".into()),
        "a",
        reason,
        now,
    )
    .expect("a blocking restriction");
    let id = store.insert_restriction(&r).await.expect("restriction");
    store.close().await;
    id
}

/// The audit log oldest first, with the restriction id replaced.
async fn audit_of(sc: &Scene, restriction: &str) -> Vec<(String, Entry)> {
    let store = Store::open(&store_url(sc)).await.expect("store");
    let mut log = store.audit_log(1000).await.expect("audit log");
    store.close().await;
    log.reverse();
    log.into_iter()
        .map(|e| {
            let detail = e.detail.replace(restriction, "<restriction>");
            (e.actor, (e.action, e.target, detail))
        })
        .collect()
}

async fn by_store_cli() -> (Vec<(String, Entry)>, String) {
    let sc = scene("").await;
    let rid = prepare(&sc).await;
    for verb in VERBS {
        sc.ok(verb);
    }
    (audit_of(&sc, &rid).await, rid)
}

async fn by_remote_cli() -> Vec<(String, Entry)> {
    let sc = scene("").await;
    let rid = prepare(&sc).await;
    let mut relay = RelayProc::start(sc.dir());
    let op = relay.token.clone().expect("operator token");
    let server = format!("http://{}", relay.addr("http"));
    let empty = tempfile::tempdir().expect("tempdir");
    for verb in VERBS {
        let out = Command::new(BIN)
            .env_remove("OUTGUARD_SERVER")
            .env_remove("OUTGUARD_TOKEN")
            .env_remove("OUTGUARD_CONFIG")
            .arg("--data-dir")
            .arg(empty.path())
            .args(["--server", &server, "--token", &op])
            .args(*verb)
            .output()
            .expect("run outguard");
        assert!(
            out.status.success(),
            "outguard --server {verb:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    relay.terminate();
    audit_of(&sc, &rid).await
}

async fn by_api() -> Vec<(String, Entry)> {
    let sc = scene("").await;
    let rid = prepare(&sc).await;
    let mut relay = RelayProc::start(sc.dir());
    let op = relay.token.clone().expect("operator token");
    let http = relay.addr("http");
    let calls: &[(&str, &str, Option<&str>, u16)] = &[
        ("POST", "/api/v1/tenants", Some(r#"{"name":"c"}"#), 201),
        (
            "POST",
            "/api/v1/accounts",
            Some(r#"{"tenant":"a","address":"dave@a.example"}"#),
            201,
        ),
        (
            "PUT",
            "/api/v1/policies/a/default",
            Some(r#"{"recipient_limit_per_day":200,"quarantine":true}"#),
            200,
        ),
        (
            "POST",
            "/api/v1/restricted/bob@a.example/lift",
            Some(r#"{"reason":"cleaned up"}"#),
            200,
        ),
        (
            "POST",
            "/api/v1/connectors",
            Some(r#"{"tenant":"b","cidr":"10.9.8.0/24","limit_per_hour":50}"#),
            201,
        ),
        (
            "POST",
            "/api/v1/accounts/alice@a.example/send_as",
            Some(r#"{"target":"@a.example"}"#),
            204,
        ),
        ("DELETE", "/api/v1/tenants/c", None, 204),
    ];
    for (method, path, body, want) in calls {
        let r = api(http, method, path, &op, *body).await;
        assert_eq!(r.status, *want, "{method} {path}: {}", r.text());
    }
    relay.terminate();
    audit_of(&sc, &rid).await
}

fn entries(log: &[(String, Entry)]) -> Vec<Entry> {
    log.iter().map(|(_, e)| e.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_on_the_store_cli_remote_and_api_audit_the_same_change() {
    let (store_log, _) = by_store_cli().await;
    let remote_log = by_remote_cli().await;
    let api_log = by_api().await;

    let want: Vec<(&str, &str)> = vec![
        ("tenant.add", "c"),
        ("account.add", "dave@a.example"),
        ("policy.set", "a/default"),
        ("restricted.lift", "bob@a.example"),
        ("connector.add", "10.9.8.0/24"),
        ("account.send_as.add", "alice@a.example"),
        ("tenant.remove", "c"),
    ];
    let got: Vec<(&str, &str)> = store_log
        .iter()
        .map(|(_, (a, t, _))| (a.as_str(), t.as_str()))
        .collect();
    assert_eq!(got, want, "the CLI on the store audits each change once");
    assert!(
        store_log.iter().all(|(actor, _)| actor == "cli"),
        "{store_log:?}"
    );
    for (name, log) in [("CLI --server", &remote_log), ("API", &api_log)] {
        assert!(
            log.iter().all(|(actor, _)| actor.starts_with("token:")),
            "{name}: {log:?}"
        );
        assert_eq!(
            entries(log),
            entries(&store_log),
            "{name} and the CLI on the store disagree"
        );
    }
}
