//! The web UI in a real headless Chromium (driven over WebDriver by chromedriver): a tenant
//! admin logs in with a token, sees the dashboard, searches the trace for a message submitted
//! over SMTP, opens its timeline, and cannot open another tenant's message. Screenshots go to
//! the test's temp dir and to `target/ui-screenshots/`. Without Chromium this test FAILS and
//! names the packages to install.

mod common;
mod web;

use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};
use outguard_types::model::Role;
use web::{Browser, api, artifact_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admin_logs_in_and_reads_a_trace() {
    let sc = scene("").await;
    sc.provision().await;
    let admin = {
        let store = outguard_store::Store::open(&format!(
            "sqlite://{}",
            sc.dir().join("data/outguard.db").display()
        ))
        .await
        .expect("store");
        let (_, secret) = store
            .create_token(Role::TenantAdmin, Some("a"), 1)
            .await
            .expect("token");
        store.close().await;
        secret
    };
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let op = relay.token.clone().expect("operator token");
    let send = |from: &'static str, subject: &'static str| {
        let data = message(
            from,
            "x@dest.example",
            subject,
            "hello from the browser test",
        );
        let addr = relay.addr("connector");
        async move { queued_id(&Client::send_mail(addr, None, from, &["x@dest.example"], &data).await) }
    };
    let id = send("bob@a.example", "browser trace").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while api(http, "GET", &format!("/api/v1/messages/{id}"), &op, None)
        .await
        .json()["message"]["state"]
        != "delivered"
    {
        assert!(Instant::now() < deadline, "message {id} never delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let profile = sc.dir().join("chromium-profile");
    let shots = sc.dir().join("screenshots");
    std::fs::create_dir_all(&shots).expect("dir");
    let b = Browser::start(&profile).await;
    let base = format!("http://{http}");

    b.goto(&format!("{base}/")).await;
    assert!(
        b.url().await.ends_with("/login"),
        "not logged in → login page"
    );
    // Keyboard only: type the token and press Enter (WebDriver's Enter key is U+E007).
    b.type_into("#token", &format!("{admin}\u{E007}")).await;
    b.wait_text("h1", "Dashboard: tenant a").await;
    assert!(
        b.source().await.contains("<svg"),
        "the dashboard has its chart"
    );
    b.screenshot(&shots.join("dashboard.png")).await;

    b.goto(&format!("{base}/trace")).await;
    b.type_into("#from", "bob@a.example").await;
    b.click("fieldset button[type=submit]").await;
    let results = b.source().await;
    assert!(
        results.contains(&format!("/trace/{id}")),
        "search results lack {id}: {results}"
    );
    b.click(&format!("a[href='/trace/{id}']")).await;
    assert_eq!(b.text("h1").await, format!("Message {id}"));
    let timeline = b.text("#timeline").await;
    assert!(
        timeline.contains("received") && timeline.contains("delivered"),
        "{timeline}"
    );
    b.screenshot(&shots.join("trace.png")).await;

    // Another tenant's message is not there for this admin.
    let other = send("carol@b.example", "other tenant").await;
    b.goto(&format!("{base}/trace/{other}")).await;
    assert_eq!(b.text("h1").await, "Not Found");
    b.quit().await;

    let out = artifact_dir();
    std::fs::create_dir_all(&out).expect("artifact dir");
    for f in ["dashboard.png", "trace.png"] {
        let png = std::fs::read(shots.join(f)).expect("screenshot");
        assert!(png.len() > 2000, "{f} is suspiciously small");
        std::fs::copy(shots.join(f), out.join(f)).expect("copy artifact");
    }
}
