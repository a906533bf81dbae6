//! End to end, SPEC §9 "What a tenant admin may change" (policy values) and "Files" on the real
//! binary, as an attacker with a `tenant_admin` token would try them (issue 16, cases 4, 5, 10):
//! the service's own limits are the operator's; `[policy.ceilings]` caps the rest; BCC and
//! notification lists are short, in the tenant's own domains and free of control characters,
//! as is every name and address the API takes; stored escape sequences never reach a terminal;
//! and every file in data_dir is owner-only under umask 022.

mod common;
mod web;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};
use web::api;

/// A `tenant_admin` token of `tenant`, made by the operator through the API.
async fn tenant_admin(http: SocketAddr, op: &str, tenant: &str) -> String {
    let body = format!(r#"{{"role":"tenant_admin","tenant":"{tenant}"}}"#);
    let made = api(http, "POST", "/api/v1/tokens", op, Some(&body)).await;
    assert_eq!(made.status, 201, "{}", made.text());
    made.json()["secret"].as_str().expect("secret").to_string()
}

/// (status, error message) of a PUT of the tenant default.
async fn put_default(http: SocketAddr, token: &str, body: &str) -> (u16, String) {
    let r = api(http, "PUT", "/api/v1/policies/a/default", token, Some(body)).await;
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (r.status, msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_cannot_lift_the_services_own_limits() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let op = relay.token.clone().expect("operator token");
    let ta = tenant_admin(http, &op, "a").await;

    for (body, key) in [
        (
            r#"{"tenant_spam_messages_per_hour":1000000}"#,
            "tenant_spam_messages_per_hour",
        ),
        (r#"{"max_unblocks_per_day":1000}"#, "max_unblocks_per_day"),
    ] {
        let (status, msg) = put_default(http, &ta, body).await;
        assert!(
            status == 403 && msg.contains(key) && msg.contains("operator"),
            "{body}: {status} {msg}"
        );
    }
    // Not through a new custom policy either.
    let r = api(
        http,
        "POST",
        "/api/v1/policies/a",
        &ta,
        Some(r#"{"name":"bulk","priority":1,"scope":{"senders":["bob@a.example"],"domains":[],"except_senders":[],"except_domains":[]},"settings":{"max_unblocks_per_day":1000}}"#),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // The operator may; a tenant admin's later write that leaves them out keeps them.
    let (status, msg) = put_default(
        http,
        &op,
        r#"{"tenant_spam_messages_per_hour":1000000,"max_unblocks_per_day":1000}"#,
    )
    .await;
    assert_eq!(status, 200, "{msg}");
    let (status, msg) = put_default(http, &ta, r#"{"recipient_limit_per_day":100}"#).await;
    assert_eq!(status, 200, "{msg}");
    let got = api(http, "GET", "/api/v1/policies/a/default", &ta, None)
        .await
        .json();
    assert_eq!(
        got["settings"]["tenant_spam_messages_per_hour"], 1000000,
        "{got}"
    );
    assert_eq!(got["settings"]["max_unblocks_per_day"], 1000, "{got}");
    assert_eq!(got["settings"]["recipient_limit_per_day"], 100, "{got}");

    // The CLI on the store acts as the operator; the CLI over the API carries the token's role.
    sc.ok(&["policy", "set", "--tenant", "a", "max_unblocks_per_day=50"]);
    let server = format!("http://{http}");
    let (code, _, err) = sc.cli(&[
        "--server",
        &server,
        "--token",
        &ta,
        "policy",
        "set",
        "--tenant",
        "a",
        "max_unblocks_per_day=60",
    ]);
    assert!(
        code != 0 && err.contains("max_unblocks_per_day"),
        "{code} {err}"
    );
    let (code, _, err) = sc.cli(&[
        "--server",
        &server,
        "--token",
        &op,
        "policy",
        "set",
        "--tenant",
        "a",
        "max_unblocks_per_day=60",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_ceilings_cap_a_tenant_admin_and_not_the_operator() {
    let sc = scene("\n[policy.ceilings]\nrecipient_limit_per_day = 2000\nspam_ratio = 0.6\n").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let op = relay.token.clone().expect("operator token");
    let ta = tenant_admin(http, &op, "a").await;

    let (status, msg) = put_default(http, &ta, r#"{"recipient_limit_per_day":2001}"#).await;
    assert!(
        status == 422 && msg.contains("recipient_limit_per_day") && msg.contains("2000"),
        "{status} {msg}"
    );
    let (status, msg) = put_default(http, &ta, r#"{"spam_ratio":0.9}"#).await;
    assert!(
        status == 422 && msg.contains("spam_ratio") && msg.contains("0.6"),
        "{status} {msg}"
    );
    let (status, msg) = put_default(http, &ta, r#"{"recipient_limit_per_day":2000}"#).await;
    assert_eq!(status, 200, "{msg}");
    let (status, msg) = put_default(http, &op, r#"{"recipient_limit_per_day":5000}"#).await;
    assert_eq!(status, 200, "the operator is not capped: {msg}");

    // check-config names a ceiling outside its key's range.
    let bad = sc.dir().join("bad.toml");
    std::fs::write(&bad, "[policy.ceilings]\nspam_ratio = 2.0\n").expect("write");
    let (code, _, err) = sc.cli(&["check-config", bad.to_str().expect("utf-8")]);
    assert!(
        code == 64 && err.contains("policy.ceilings.spam_ratio"),
        "{code} {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcc_lists_are_short_owned_and_clean_and_so_is_every_name() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let op = relay.token.clone().expect("operator token");
    let ta = tenant_admin(http, &op, "a").await;

    let list = |n: usize| -> String {
        (1..=n)
            .map(|i| format!("\"s{i}@a.example\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let cases = [
        (
            format!(
                r#"{{"bcc_suspicious_outbound_mail":true,"bcc_recipients":[{}]}}"#,
                list(11)
            ),
            "at most 10",
        ),
        (
            r#"{"bcc_recipients":["sec@b.example"]}"#.to_string(),
            "bcc_recipients",
        ),
        (
            r#"{"notify_recipients":["boss@elsewhere.example"]}"#.to_string(),
            "notify_recipients",
        ),
        (
            r#"{"bcc_recipients":["z\u0000y@a.example"]}"#.to_string(),
            "control",
        ),
        (
            r#"{"notify_recipients":["a\u001b[2J@a.example"]}"#.to_string(),
            "control",
        ),
    ];
    for (body, want) in &cases {
        let (status, msg) = put_default(http, &ta, body).await;
        assert!(
            status == 422 && msg.contains(want),
            "{body}: {status} {msg}"
        );
    }
    let ten = format!(
        r#"{{"bcc_suspicious_outbound_mail":true,"bcc_recipients":[{}],"notify_recipients":["Admin@A.example"]}}"#,
        list(10)
    );
    let (status, msg) = put_default(http, &ta, &ten).await;
    assert_eq!(status, 200, "{msg}");

    // Every other name, address or reason the API takes refuses control characters too.
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/policies/a",
            r#"{"name":"x\u001b[2J","priority":3,"scope":{"senders":["bob@a.example"],"domains":[],"except_senders":[],"except_domains":[]},"settings":{}}"#,
        ),
        ("POST", "/api/v1/tenants", r#"{"name":"t\u0000"}"#),
        ("POST", "/api/v1/domains", r#"{"domain":"c.example\n"}"#),
        (
            "POST",
            "/api/v1/accounts",
            r#"{"address":"dave@a.example\r\n","password":"secret-password-1"}"#,
        ),
        (
            "POST",
            "/api/v1/restricted/bob@a.example/lift",
            r#"{"reason":"fixed\u001b]0;pwned\u0007"}"#,
        ),
        (
            "POST",
            "/api/v1/webhooks",
            r#"{"url":"http://hooks.a.example/\u001b[31m"}"#,
        ),
    ] {
        let token = if path.contains("tenants") { &op } else { &ta };
        let r = api(http, method, path, token, Some(body)).await;
        assert_eq!(r.status, 422, "{path} {body}: {}", r.text());
        assert!(r.text().contains("control"), "{path}: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_output_escapes_stored_control_characters() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "bob@a.example",
        &["x@dest.example"],
        &message("bob@a.example", "x@dest.example", "esc", "hello"),
    )
    .await;
    assert!(r.starts_with("250 "), "{r}");
    let id = queued_id(&r);
    // Data stored by an older version (or any path that let it in) still must not reach the
    // terminal raw.
    let store = outguard_store::Store::open(&format!(
        "sqlite://{}",
        sc.dir().join("data/outguard.db").display()
    ))
    .await
    .expect("store");
    store
        .append_events(&[outguard_types::model::TraceEvent {
            message_id: id.clone(),
            at: 2,
            kind: outguard_types::model::EventKind::Policy,
            detail: "bcc z\u{0}y@a.example \u{1b}[2J\u{1b}]0;owned\u{7}".into(),
            data: serde_json::Value::Null,
        }])
        .await
        .expect("event");
    store.close().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = sc.cli(&["trace", "--id", &id]);
        if out.contains("bcc z") {
            assert!(
                !out.chars().any(|c| c.is_control() && c != '\n'),
                "raw control characters printed: {out:?}"
            );
            assert!(out.contains("\\u{1b}[2J"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "event never shown: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every directory under `root` is 0700 and every file 0600; returns how many files were seen.
fn assert_private_tree(root: &Path) -> usize {
    let mut files = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.exists() {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
                files += 1;
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_is_owner_only_whatever_the_umask() {
    let sc = scene("").await;
    // An older data dir, made world-readable (the store file comes from `provision`).
    sc.provision().await;
    let data = sc.dir().join("data");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(
        data.join("outguard.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let mut relay = RelayProc::start_under_umask(sc.dir(), "022");
    // A message to a domain whose DNS fails stays in the spool.
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "bob@a.example",
        &["x@broken.example"],
        &message("bob@a.example", "x@broken.example", "stays", "hello"),
    )
    .await;
    assert!(r.starts_with("250 "), "{r}");
    let id = queued_id(&r);

    assert_eq!(mode(&data), 0o700);
    for f in ["outguard.db", "outguard.db-wal", "outguard.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&data.join(format!("spool/queue/{id}.msg"))), 0o600);
    for f in ["tls/selfsigned.key", "tls/selfsigned.crt"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&data.join("tls")), 0o700);
    assert!(assert_private_tree(&data) >= 6);
    // The counter snapshot is written at shutdown; it and everything else stay owner-only.
    assert!(relay.terminate().success());
    assert!(assert_private_tree(&data) >= 4);
    assert!(
        std::fs::read_dir(&data)
            .expect("data")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains("counters")),
        "a counter snapshot was written"
    );
}
