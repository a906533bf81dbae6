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
    let dash = b.source().await;
    assert!(
        dash.contains("<svg") && dash.contains("Messages per hour by disposition"),
        "the dashboard has its charts"
    );
    assert!(
        dash.contains("Totals: delivered 1.") && dash.contains("Data table: Complaints per hour"),
        "the delivered message is counted, every chart has its table: {dash}"
    );
    b.screenshot(&shots.join("dashboard.png")).await;

    b.goto(&format!("{base}/trace")).await;
    b.type_into("#from", "bob@a.example").await;
    b.click("fieldset button[type=submit]").await;
    // The click starts a navigation that WebDriver does not wait for: wait until the results
    // page (a GET with the query) is the one loaded, so the link found below is on it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.url().await.contains("from=") {
        assert!(Instant::now() < deadline, "the search did not navigate");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.wait_text("h1", "Message trace").await;
    let results = b.source().await;
    assert!(
        results.contains(&format!("/trace/{id}")),
        "search results lack {id}: {results}"
    );
    b.click(&format!("a[href='/trace/{id}']")).await;
    b.wait_text("h1", &format!("Message {id}")).await;
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

/// One submission from `who` to `n` recipients (`r{first}..`): each RCPT reply and the final
/// reply (None when no RCPT was accepted or MAIL was refused — then the MAIL reply is first).
async fn submit(
    relay: &RelayProc,
    who: (&str, &str),
    first: usize,
    n: usize,
) -> (Vec<String>, Option<String>) {
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    c.cmd("EHLO c.test").await;
    assert!(c.auth_plain(who.0, who.1).await.starts_with("235"));
    let r = c.cmd(&format!("MAIL FROM:<{}>", who.0)).await;
    if !r.starts_with("250") {
        return (vec![r], None);
    }
    let mut replies = Vec::new();
    for i in first..first + n {
        replies.push(c.cmd(&format!("RCPT TO:<r{i}@dest.example>")).await);
    }
    if !replies.iter().any(|r| r.starts_with("250")) {
        return (replies, None);
    }
    c.cmd("DATA").await;
    c.send_raw(message(who.0, "list@dest.example", "Newsletter", "News.").as_bytes())
        .await;
    let fin = c.cmd(".").await;
    c.cmd("QUIT").await;
    (replies, Some(fin))
}

/// The restricted-users portal end to end: a real policy hit (2 external recipients per hour,
/// bob sends 3) restricts bob; the tenant admin finds him on "Restricted users", lifts him with
/// a reason, sees him gone, and bob's next submission is accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admin_lifts_a_restricted_user() {
    let sc = scene("").await;
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=2",
    ]);
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
    let bob = ("bob@a.example", "bob-pw");
    let (rcpts, fin) = submit(&relay, bob, 0, 3).await;
    assert_eq!(rcpts[2], "550 5.2.2 Submission quota exceeded", "{rcpts:?}");
    assert!(fin.expect("the first two are sent").starts_with("250"));
    let (r, _) = submit(&relay, bob, 3, 1).await;
    assert_eq!(r[0], "550 5.1.8 Access denied, bad outbound sender");

    let profile = sc.dir().join("chromium-profile");
    let shots = sc.dir().join("screenshots");
    std::fs::create_dir_all(&shots).expect("dir");
    let b = Browser::start(&profile).await;
    let base = format!("http://{}", relay.addr("http"));
    b.goto(&format!("{base}/login")).await;
    b.type_into("#token", &format!("{admin}\u{E007}")).await;
    b.wait_text("h1", "Dashboard: tenant a").await;
    b.click("a[href='/restricted']").await;
    b.wait_text("h1", "Restricted users").await;
    let page = b.source().await;
    assert!(page.contains("bob@a.example"), "bob is listed: {page}");
    assert!(
        page.contains("external recipients in last hour"),
        "with the numbers: {page}"
    );
    b.screenshot(&shots.join("restricted.png")).await;

    // Issue 20: every page fits 1400 and 390 px windows (no sideways scrolling) and the Lift
    // button, the page's main action, is inside the window and is what a click there hits.
    let (_, fin) = submit(&relay, ("alice@a.example", "alice-pw"), 20, 1).await;
    let alice_id = queued_id(&fin.expect("alice's message is accepted"));
    let pages = [
        "/".to_string(),
        "/trace".to_string(),
        format!("/trace/{alice_id}"),
        "/restricted".to_string(),
        "/queue".to_string(),
        "/alerts".to_string(),
        "/policies".to_string(),
        "/pools".to_string(),
    ];
    for width in [1400, 390] {
        b.set_window(width, 900).await;
        for path in &pages {
            assert_fits(&b, &base, path, width).await;
        }
        b.goto(&format!("{base}/restricted")).await;
        let v = b
            .exec(
                "const b = document.querySelector(\"button[aria-label='Lift restriction of bob@a.example']\");\
                 b.scrollIntoView({block: 'center', inline: 'nearest'});\
                 const r = b.getBoundingClientRect();\
                 const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);\
                 return [r.left, r.right, r.width, r.height, window.innerWidth, hit === b || b.contains(hit)];",
            )
            .await;
        let num = |i: usize| v[i].as_f64().expect("number");
        assert!(
            num(0) >= 0.0 && num(1) <= num(4) && num(2) > 0.0 && num(3) > 0.0,
            "Lift is not inside a {width} px window: {v}"
        );
        assert_eq!(v[5], true, "Lift is covered at {width} px: {v}");
        b.screenshot(&shots.join(format!("restricted-{width}.png")))
            .await;
    }
    b.set_window(1400, 900).await;
    b.goto(&format!("{base}/restricted")).await;
    b.wait_text("h1", "Restricted users").await;

    // The reason is required: the browser refuses to submit an empty one (no request is made).
    b.click("button[aria-label='Lift restriction of bob@a.example']")
        .await;
    assert_eq!(b.text("h1").await, "Restricted users");
    b.type_into("#r0-reason", "password reset, malware removed")
        .await;
    b.click("#r0-held").await;
    b.click("button[aria-label='Lift restriction of bob@a.example']")
        .await;
    b.wait_text(
        "p[role=status]",
        "The restriction of bob@a.example was lifted.",
    )
    .await;
    let page = b.source().await;
    assert!(
        !page.contains("<th scope=\"row\">bob@a.example"),
        "bob is gone: {page}"
    );
    b.screenshot(&shots.join("restricted-lifted.png")).await;
    b.quit().await;

    // The operator's views of the same pages hold every tenant's rows (wider tables, the
    // service ceilings on Policies): they fit both widths too, and so does the login page.
    let op = relay.token.clone().expect("operator token");
    let ob = Browser::start(&sc.dir().join("chromium-profile-operator")).await;
    ob.set_window(1400, 900).await;
    ob.goto(&format!("{base}/login")).await;
    ob.type_into("#token", &format!("{op}\u{E007}")).await;
    ob.wait_text("h1", "Dashboard: all tenants").await;
    for width in [1400, 390] {
        ob.set_window(width, 900).await;
        for path in &pages {
            assert_fits(&ob, &base, path, width).await;
        }
    }
    ob.quit().await;
    let lb = Browser::start(&sc.dir().join("chromium-profile-login")).await;
    for width in [1400, 390] {
        lb.set_window(width, 900).await;
        assert_fits(&lb, &base, "/login", width).await;
    }
    lb.quit().await;

    // The relay notices the lift at its next restriction poll; bob is accepted again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (r, fin) = submit(&relay, bob, 10, 1).await;
        if r[0].starts_with("250") {
            assert!(fin.expect("data").starts_with("250"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bob still refused after the lift: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The message path feeds /metrics: accepted messages by disposition and pool, scan times.
    let metrics = api(relay.addr("http"), "GET", "/metrics", "", None)
        .await
        .text();
    assert!(
        metrics.contains("outguard_messages_total{disposition=\"queued\",pool=\"regular\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("outguard_scan_seconds_count 0\n"),
        "{metrics}"
    );
    let out = artifact_dir();
    std::fs::create_dir_all(&out).expect("artifact dir");
    for f in [
        "restricted.png",
        "restricted-1400.png",
        "restricted-390.png",
        "restricted-lifted.png",
    ] {
        let png = std::fs::read(shots.join(f)).expect("screenshot");
        assert!(png.len() > 2000, "{f} is suspiciously small");
        std::fs::copy(shots.join(f), out.join(f)).expect("copy artifact");
    }
}

/// Issue 20: `path` fits a `width` px window (no sideways scrolling).
async fn assert_fits(b: &Browser, base: &str, path: &str, width: u32) {
    b.goto(&format!("{base}{path}")).await;
    let v = b
        .exec("return [document.documentElement.scrollWidth, window.innerWidth, document.querySelector('h1') ? document.querySelector('h1').textContent : '']")
        .await;
    let (scroll, inner) = (
        v[0].as_u64().expect("scrollWidth"),
        v[1].as_u64().expect("innerWidth"),
    );
    assert!(
        inner <= u64::from(width) && inner + 40 >= u64::from(width),
        "the window is not {width} px wide: innerWidth {inner}"
    );
    assert!(
        scroll <= inner,
        "{path} ({}) overflows a {width} px window: scrollWidth {scroll} > innerWidth {inner}",
        v[2]
    );
}
