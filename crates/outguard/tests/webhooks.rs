//! End to end, webhook subscriptions made through the API (SPEC §3/§5) on the real binary: a
//! tenant admin of a subscribes a receiver on 127.0.0.1, bob of tenant a crosses a low hourly
//! limit and is restricted, and the `user_restricted` alert arrives there as a JSON POST whose
//! `X-Outguard-Signature` is the HMAC-SHA256 of the body under the secret shown at creation.
//! Tenant b's subscription and a config webhook for another kind receive nothing; the list shows
//! the config webhook read-only and never a secret.
//!
//! SSRF (SPEC §9, issue 16 item 6): a tenant admin's subscription to a loopback, private,
//! link-local, unspecified or metadata address (or a name resolving to one, or a non-http
//! scheme) is refused with 422; a name that re-resolves to loopback after subscription is refused
//! at delivery and nothing reaches the loopback listener; `https://` hooks are verified against
//! the operator's `[webhooks] extra_roots` and a wrong-CA endpoint gets nothing. No test here
//! ever connects outside 127.0.0.0/8: the one public address is only resolved, then refused.

mod common;
mod web;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::Client;
use common::{RelayProc, message, scene};
use hmac::{KeyInit, Mac};
use outguard_harness::TestCa;
use outguard_harness::http::{HttpRequest as Seen, Receiver, read_request};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use web::api;

const WAIT: Duration = Duration::from_secs(30);

/// A tiny HTTP receiver on 127.0.0.1: answers 200 to every request and reports it.
async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Some(seen) = read_request(&mut s).await {
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = tx.send(seen);
                }
            });
        }
    });
    (addr, rx)
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Bob (tenant a, limit of 2 external recipients an hour set by the caller) sends to 3: he is
/// restricted, which raises a `user_restricted` alert for tenant a.
async fn restrict_bob(relay: &RelayProc) {
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    c.cmd("EHLO c.test").await;
    assert!(
        c.auth_plain("bob@a.example", "bob-pw")
            .await
            .starts_with("235")
    );
    assert!(c.cmd("MAIL FROM:<bob@a.example>").await.starts_with("250"));
    let mut replies = Vec::new();
    for i in 0..3 {
        replies.push(c.cmd(&format!("RCPT TO:<r{i}@dest.example>")).await);
    }
    assert!(replies[2].starts_with("550"), "{replies:?}");
    c.cmd("DATA").await;
    c.send_raw(message("bob@a.example", "r0@dest.example", "news", "hi").as_bytes())
        .await;
    c.cmd(".").await;
    c.cmd("QUIT").await;
}

/// A started relay for tenants a and b where bob may send to 2 external recipients an hour, and
/// a tenant_admin token of a.
async fn relay_with_admin(sc: &common::Scene) -> (RelayProc, String) {
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=2",
    ]);
    let relay = RelayProc::start(sc.dir());
    let op = relay.token.clone().expect("operator token");
    let made = api(
        relay.addr("http"),
        "POST",
        "/api/v1/tokens",
        &op,
        Some(r#"{"role":"tenant_admin","tenant":"a"}"#),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let admin = made.json()["secret"].as_str().expect("secret").to_string();
    (relay, admin)
}

/// `POST /api/v1/webhooks` for tenant a's admin: (status, body).
async fn subscribe(relay: &RelayProc, admin: &str, url: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({"url": url, "kinds": ["user_restricted"]}).to_string();
    let r = api(
        relay.addr("http"),
        "POST",
        "/api/v1/webhooks",
        admin,
        Some(&body),
    )
    .await;
    let status = r.status;
    (status, r.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_subscription_gets_its_tenants_alert_signed_and_no_other() {
    let (hook_addr, mut seen) = receiver().await;
    let sc = scene(&format!(
        "\n[webhooks]\nallow_private = [\"127.0.0.0/8\"]\n\n[[webhooks.hooks]]\nurl = \"http://{hook_addr}/config\"\nsecret = \"config-secret-0001\"\nkinds = [\"ip_listed\"]\n"
    ))
    .await;
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=2",
    ]);
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let op = relay
        .token
        .clone()
        .expect("first start prints an operator token");

    // A tenant admin of a subscribes (tenant implied, secret generated); the operator adds one
    // for tenant b, every kind.
    let made = api(
        http,
        "POST",
        "/api/v1/tokens",
        &op,
        Some(r#"{"role":"tenant_admin","tenant":"a"}"#),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let admin_a = made.json()["secret"].as_str().expect("secret").to_string();
    let a = api(
        http,
        "POST",
        "/api/v1/webhooks",
        &admin_a,
        Some(&format!(
            r#"{{"url":"http://{hook_addr}/a","kinds":["user_restricted"]}}"#
        )),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let a = a.json();
    assert_eq!(a["tenant"], "a");
    let secret_a = a["secret"].as_str().expect("secret shown once").to_string();
    let b = api(
        http,
        "POST",
        "/api/v1/webhooks",
        &op,
        Some(&format!(
            r#"{{"tenant":"b","url":"http://{hook_addr}/b","secret":"tenant-b-secret-0001"}}"#
        )),
    )
    .await;
    assert_eq!(b.status, 201, "{}", b.text());

    let list = api(http, "GET", "/api/v1/webhooks", &op, None).await;
    assert_eq!(list.status, 200);
    let list = list.json();
    let sources: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|w| w["source"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(sources, ["config", "store", "store"], "{list}");
    assert!(!list.to_string().contains("secret"), "{list}");
    let mine = api(http, "GET", "/api/v1/webhooks", &admin_a, None)
        .await
        .json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");

    restrict_bob(&relay).await;

    let got = tokio::time::timeout(WAIT, seen.recv())
        .await
        .expect("the alert POST in time")
        .expect("receiver alive");
    assert_eq!(got.path, "/a", "tenant a's subscription");
    assert_eq!(
        got.header("X-Outguard-Signature"),
        Some(hmac_hex(&secret_a, &got.body).as_str()),
        "signed with the secret shown at creation"
    );
    assert_eq!(got.header("X-Outguard-Event"), Some("user_restricted"));
    let j: serde_json::Value = serde_json::from_slice(&got.body).expect("json body");
    assert_eq!(j["kind"], "user_restricted");
    assert_eq!(j["tenant"], "a");
    assert_eq!(j["subject"]["id"], "bob@a.example", "{j}");

    // Tenant b's subscription and the config one (ip_listed only) get nothing. Deliveries to
    // every matching target start together, so a wrong one would have arrived by now.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(3), seen.recv()).await {
        panic!("unexpected webhook POST to {}", extra.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admin_cannot_subscribe_internal_targets() {
    let sc = scene("").await;
    sc.dns.update(|z| {
        z.a("internal.hooks.example", [10, 1, 2, 3].into())
            .a("mixed.hooks.example", [8, 8, 8, 8].into())
            .a("mixed.hooks.example", [127, 0, 0, 1].into())
            .aaaa("v6.hooks.example", "fd00:ec2::254".parse().expect("v6"));
    });
    let (relay, admin) = relay_with_admin(&sc).await;
    for (url, want) in [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://127.0.0.1:6379", "loopback"),
        ("http://[::1]:6379", "loopback"),
        ("http://localhost:5432", "loopback"),
        ("http://0.0.0.0:8025", "unspecified"),
        ("http://10.0.0.1/", "private"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://100.64.0.1/", "shared"),
        ("http://internal.hooks.example/", "private"),
        ("http://mixed.hooks.example/", "loopback"),
        ("https://v6.hooks.example/", "metadata"),
        ("ftp://x", "http"),
        ("http://user:pw@hooks.example/", "user"),
        ("http://hooks.example/\u{1b}[31m", "control"),
    ] {
        let (status, j) = subscribe(&relay, &admin, url).await;
        assert_eq!(status, 422, "{url}: {j}");
        let msg = j["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(want), "{url}: `{msg}` lacks `{want}`");
    }
    let list = api(relay.addr("http"), "GET", "/api/v1/webhooks", &admin, None).await;
    assert_eq!(list.json(), serde_json::json!([]), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_rebound_to_loopback_is_refused_at_delivery() {
    let mut hook = Receiver::start("127.0.0.1:0".parse().expect("addr"), None)
        .await
        .expect("receiver");
    let sc = scene("").await;
    // Public at subscription (only ever resolved and checked, never connected to).
    sc.dns.update(|z| {
        z.a("rebind.hooks.example", [8, 8, 8, 8].into());
    });
    let (relay, admin) = relay_with_admin(&sc).await;
    let url = format!("http://rebind.hooks.example:{}/r", hook.addr.port());
    let (status, j) = subscribe(&relay, &admin, &url).await;
    assert_eq!(status, 201, "{j}");

    // The name now answers 127.0.0.1. Before any alert, make sure the relay's own resolver sees
    // that (a second subscription to the name is refused), so no delivery can ever go to the
    // public address.
    sc.dns.update(|z| {
        z.remove("rebind.hooks.example")
            .a("rebind.hooks.example", [127, 0, 0, 1].into());
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = subscribe(&relay, &admin, &url).await;
        if status == 422 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relay still accepts {url} after it moved to 127.0.0.1"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    restrict_bob(&relay).await;
    let deadline = std::time::Instant::now() + WAIT;
    while !relay.stderr().contains("webhook refused") {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal recorded; stderr:\n{}",
            relay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        hook.requests.try_recv().is_err(),
        "nothing POSTed to loopback"
    );
    assert_eq!(hook.connections(), 0, "not even a connection");
    let log = relay.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("webhook refused"))
        .expect("refusal line");
    assert!(
        line.contains("127.0.0.1") && line.contains("loopback"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_hook_is_verified_against_the_extra_root() {
    let good_ca = TestCa::new("Outguard test CA").expect("ca");
    let other_ca = TestCa::new("Someone else's CA").expect("ca");
    let pem_dir = tempfile::tempdir().expect("tempdir");
    let ca_file = pem_dir.path().join("ca.pem");
    std::fs::write(&ca_file, good_ca.pem()).expect("ca file");
    let any = "127.0.0.1:0".parse().expect("addr");
    let mut good = Receiver::start(
        any,
        Some(good_ca.server_config(&["hook.tls.example"]).expect("cert")),
    )
    .await
    .expect("receiver");
    let mut wrong = Receiver::start(
        any,
        Some(
            other_ca
                .server_config(&["wrong.tls.example"])
                .expect("cert"),
        ),
    )
    .await
    .expect("receiver");
    let sc = scene(&format!(
        "\n[webhooks]\nallow_private = [\"127.0.0.0/8\"]\nextra_roots = \"{}\"\n",
        ca_file.display()
    ))
    .await;
    sc.dns.update(|z| {
        z.a("hook.tls.example", [127, 0, 0, 1].into())
            .a("wrong.tls.example", [127, 0, 0, 1].into());
    });
    let (relay, admin) = relay_with_admin(&sc).await;
    let good_url = format!("https://hook.tls.example:{}/tls", good.addr.port());
    let (status, made) = subscribe(&relay, &admin, &good_url).await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().expect("secret").to_string();
    let wrong_url = format!("https://wrong.tls.example:{}/tls", wrong.addr.port());
    let (status, j) = subscribe(&relay, &admin, &wrong_url).await;
    assert_eq!(status, 201, "{j}");

    restrict_bob(&relay).await;
    let got = tokio::time::timeout(WAIT, good.requests.recv())
        .await
        .expect("the alert POST over https in time")
        .expect("receiver alive");
    assert_eq!(got.path, "/tls");
    assert_eq!(
        got.header("Host"),
        Some(format!("hook.tls.example:{}", good.addr.port()).as_str())
    );
    assert_eq!(
        got.header("X-Outguard-Signature"),
        Some(hmac_hex(&secret, &got.body).as_str())
    );
    let j: serde_json::Value = serde_json::from_slice(&got.body).expect("json body");
    assert_eq!(j["kind"], "user_restricted");
    assert_eq!(j["subject"]["id"], "bob@a.example", "{j}");

    // The wrong-CA endpoint was tried (the TLS handshake failed) and got no request.
    let deadline = std::time::Instant::now() + WAIT;
    while wrong.connections() == 0 {
        assert!(std::time::Instant::now() < deadline, "never tried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        wrong.requests.try_recv().is_err(),
        "nothing delivered without a valid certificate"
    );
    assert!(
        relay.stderr().contains("wrong.tls.example"),
        "the failure is logged"
    );
}
