//! End to end, webhook subscriptions made through the API (SPEC §3/§5) on the real binary: a
//! tenant admin of a subscribes a receiver on 127.0.0.1, bob of tenant a crosses a low hourly
//! limit and is restricted, and the `user_restricted` alert arrives there as a JSON POST whose
//! `X-Outguard-Signature` is the HMAC-SHA256 of the body under the secret shown at creation.
//! Tenant b's subscription and a config webhook for another kind receive nothing; the list shows
//! the config webhook read-only and never a secret.

mod common;
mod web;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::Client;
use common::{RelayProc, message, scene};
use hmac::{KeyInit, Mac};
use outguard_harness::http::{HttpRequest as Seen, read_request};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_subscription_gets_its_tenants_alert_signed_and_no_other() {
    let (hook_addr, mut seen) = receiver().await;
    let sc = scene(&format!(
        "\n[[webhooks]]\nurl = \"http://{hook_addr}/config\"\nsecret = \"config-secret-0001\"\nkinds = [\"ip_listed\"]\n"
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

    // Bob (tenant a) crosses his limit of 2 external recipients an hour: restricted.
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
