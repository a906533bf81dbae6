//! End to end, feedback loops (SPEC §4): messages delivered through the real relay, ARF
//! reports about them sent back to the `fbl` listener by SMTP → attributed to the right
//! account and tenant (by `X-Outguard-Id`, and by Message-ID when only headers come back),
//! traced as `complaint`; malformed reports are kept and flagged; enough complaints over a
//! (test-sized) minimum sample raise `complaint_rate_exceeded` and restrict the account.
//! `fbl import` records reports from an mbox on the store.

mod common;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, scene};
use outguard_store::Store;

const WAIT: Duration = Duration::from_secs(30);

const FBL: &str = r#"
[fbl]
domains = ["fbl.outguard.test"]
min_messages = 10
complaint_alert_rate = 0.1
complaint_restrict_rate = 0.3
"#;

fn mail(i: usize) -> String {
    format!(
        "From: alice@a.example\r\nTo: x@dest.example\r\nSubject: Project update {i}\r\nMessage-ID: <update.{i}@a.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHi, here is the weekly project update number {i}. Regards, Alice\r\n"
    )
}

/// An ARF report with the original message (`full`) or only its headers.
fn arf(original: &str, full: bool) -> String {
    let (ctype, part) = if full {
        ("message/rfc822", original.to_string())
    } else {
        let headers = original.split("\r\n\r\n").next().unwrap_or_default();
        ("text/rfc822-headers", format!("{headers}\r\n"))
    };
    format!(
        "From: feedback@arf.provider.example\r\nTo: fbl@fbl.outguard.test\r\nSubject: FW: complaint\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arfb\"\r\n\r\n\
--arfb\r\nContent-Type: text/plain\r\n\r\nA user complained.\r\n\
--arfb\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ProviderFBL/1.0\r\nVersion: 1\r\nSource-IP: 127.0.0.2\r\n\r\n\
--arfb\r\nContent-Type: {ctype}\r\n\r\n{part}\r\n--arfb--\r\n"
    )
}

async fn report(relay: &RelayProc, body: &str) -> String {
    Client::send_mail(
        relay.addr("fbl"),
        None,
        "feedback@arf.provider.example",
        &["fbl@fbl.outguard.test"],
        body,
    )
    .await
}

async fn store(sc: &Scene) -> Store {
    let url = format!(
        "sqlite://{}?mode=rwc",
        sc.dir().join("data/outguard.db").display()
    );
    Store::open(&url).await.expect("store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_are_attributed_counted_and_restrict() {
    let sc = scene(FBL).await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let alice = Some(("alice@a.example", "alice-pw"));
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = Client::send_mail(
            relay.addr("submission"),
            alice,
            "alice@a.example",
            &["x@dest.example"],
            &mail(i),
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
        ids.push(queued_id(&r));
    }
    let got = sc.dest.wait_for(10, WAIT).await;
    assert_eq!(got.len(), 10);
    let delivered = |id: &str| {
        let m = got
            .iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains(&format!("X-Outguard-Id: {id}")))
            .expect("delivered copy");
        String::from_utf8_lossy(&m.data).into_owned()
    };

    // 1: the full original as delivered (X-Outguard-Id) → attributed to alice / tenant a.
    let r = report(&relay, &arf(&delivered(&ids[0]), true)).await;
    assert!(r.starts_with("250 2.0.0 Ok: report "), "{r}");
    let st = store(&sc).await;
    let recs = st.list_fbl_reports(None, 10).await.expect("reports");
    assert_eq!(recs.len(), 1);
    let att = recs[0].attributed.clone().expect("attributed");
    assert_eq!(
        (
            att.message_id.as_str(),
            att.account.as_deref(),
            att.tenant.as_deref()
        ),
        (ids[0].as_str(), Some("alice@a.example"), Some("a"))
    );
    assert_eq!(recs[0].feedback_type, "abuse");
    assert_eq!(recs[0].source_ip.as_deref(), Some("127.0.0.2"));

    // A malformed report is accepted, kept and flagged — never lost.
    let r = report(
        &relay,
        "From: someone@isp.example\r\nSubject: spam!!\r\n\r\nstop it\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");

    // 2: the submitted original's headers only, without our id (Message-ID via the trace):
    // 20 % of 10 recipients → complaint_rate_exceeded (alert at 10 %), not yet restricted.
    let r = report(&relay, &arf(&mail(1), false)).await;
    assert!(r.starts_with("250"), "{r}");
    let recs = st.list_fbl_reports(None, 10).await.expect("reports");
    assert_eq!(recs.len(), 3);
    assert!(
        recs.iter()
            .any(|r| r.malformed.is_some() && r.attributed.is_none() && r.raw.contains("stop it")),
        "malformed kept"
    );
    let by_mid = recs
        .iter()
        .find(|r| {
            r.attributed
                .as_ref()
                .is_some_and(|a| a.message_id == ids[1])
        })
        .expect("attributed by Message-ID");
    assert_eq!(
        by_mid
            .attributed
            .as_ref()
            .and_then(|a| a.account.as_deref()),
        Some("alice@a.example")
    );
    let alerts = sc.ok(&["alerts", "--kind", "complaint_rate_exceeded", "--json"]);
    assert!(alerts.contains("alice@a.example"), "{alerts}");
    let m = Client::send_mail(
        relay.addr("submission"),
        alice,
        "alice@a.example",
        &["x@dest.example"],
        &mail(20),
    )
    .await;
    assert!(m.starts_with("250"), "not restricted at 20 %: {m}");

    // 3 and 4: the 11th message above counts too (3/11 = 27 % < 30 %); the 4th complaint
    // (4/11 = 36 %) restricts.
    for i in [2, 3] {
        let r = report(&relay, &arf(&delivered(&ids[i]), true)).await;
        assert!(r.starts_with("250"), "{r}");
    }
    let restricted = sc.ok(&["restricted", "list", "--json"]);
    assert!(
        restricted.contains("alice@a.example") && restricted.contains("complaint_rate"),
        "{restricted}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = Client::send_mail(
        relay.addr("submission"),
        alice,
        "alice@a.example",
        &["x@dest.example"],
        &mail(21),
    )
    .await;
    assert!(
        m.starts_with("550 5.1.8"),
        "restricted after complaints: {m}"
    );

    // The complaint is in the message's trace; the spam overlay of tenant a learned.
    let trace = sc.ok(&["trace", "--id", &ids[0]]);
    assert!(trace.contains("complaint"), "{trace}");
    assert!(
        st.get_blob("spam-overlay:a").await.expect("blob").is_some(),
        "the tenant's spam overlay learned"
    );
    st.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fbl_import_reads_mbox_dumps() {
    let sc = scene(FBL).await;
    sc.provision().await;
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arf");
    let mut mbox = Vec::new();
    for f in ["yahoo-abuse-full.eml", "malformed-plain-forward.eml"] {
        mbox.extend_from_slice(b"From feedback@arf.example Mon Nov 23 12:00:00 2026\n");
        mbox.extend_from_slice(&std::fs::read(fx.join(f)).expect("fixture"));
        mbox.extend_from_slice(b"\n");
    }
    let path = sc.dir().join("reports.mbox");
    std::fs::write(&path, mbox).expect("mbox");
    let out = sc.ok(&[
        "fbl",
        "import",
        path.to_str().expect("path"),
        fx.join("aol-headers-only.eml").to_str().expect("path"),
        "--json",
    ]);
    let recs: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(recs.len(), 3, "{out}");
    assert_eq!(recs[0]["feedback_type"], "abuse");
    assert!(recs[1]["malformed"].is_string(), "{out}");
    assert_eq!(recs[2]["fields"]["original"], "headers");
    let (code, _, err) = sc.cli(&["fbl", "import"]);
    assert_eq!(code, 64, "usage error: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_bounce_rate_restricts() {
    use outguard_harness::sink::{Reply as SinkReply, Script};
    let sc = scene("[fbl]\nmin_messages = 10\nbounce_rate = 0.3\n").await;
    sc.provision().await;
    sc.dest.set_script(Script::default().refuse_rcpt(
        "nobody@dest.example",
        SinkReply::new(550, "5.1.1 no such user"),
    ));
    let relay = RelayProc::start(sc.dir());
    let alice = Some(("alice@a.example", "alice-pw"));
    for i in 0..10 {
        let to = if i % 5 < 2 {
            "nobody@dest.example"
        } else {
            "x@dest.example"
        };
        let r = Client::send_mail(
            relay.addr("submission"),
            alice,
            "alice@a.example",
            &[to],
            &mail(i),
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
    }
    let dsns = sc.home.wait_for(4, WAIT).await;
    assert_eq!(dsns.len(), 4, "one DSN per refused recipient");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let restricted = sc.ok(&["restricted", "list", "--json"]);
        if restricted.contains("alice@a.example") {
            assert!(restricted.contains("bounce_rate"), "{restricted}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not restricted for 4/10 hard bounces; stderr:\n{}",
            relay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let alerts = sc.ok(&["alerts", "--kind", "suspicious_sending_pattern", "--json"]);
    assert!(alerts.contains("hard bounces"), "{alerts}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = Client::send_mail(
        relay.addr("submission"),
        alice,
        "alice@a.example",
        &["x@dest.example"],
        &mail(30),
    )
    .await;
    assert!(m.starts_with("550 5.1.8"), "{m}");
}

#[path = "web/mod.rs"]
#[allow(dead_code)]
mod web;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_posted_to_the_api_are_attributed_and_readable() {
    let sc = scene(FBL).await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let token = relay.token.clone().expect("operator token on first start");
    let m = mail(1);
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(("alice@a.example", "alice-pw")),
        "alice@a.example",
        &["x@dest.example"],
        &m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = sc
        .dest
        .wait_for(1, std::time::Duration::from_secs(30))
        .await;
    let delivered = String::from_utf8_lossy(&got[0].data)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    // The trace writer records the message in batches: wait until the store knows it (real
    // complaints arrive hours after delivery).
    let st = store(&sc).await;
    let oid = queued_id(&r);
    for _ in 0..100 {
        if st.message(&oid).await.expect("store").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let auth = format!("Bearer {token}");
    let http = relay.addr("http");
    let resp = web::request(
        http,
        "POST",
        "/api/v1/fbl",
        &[("Authorization", &auth), ("Content-Type", "message/rfc822")],
        Some(&arf(&delivered, true)),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["attributed"]["account"], "alice@a.example", "{body}");
    assert_eq!(body["attributed"]["tenant"], "a");
    let id = body["id"].as_str().expect("id").to_string();
    let got = web::request(
        http,
        "GET",
        &format!("/api/v1/fbl/{id}"),
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["feedback_type"], "abuse");
    // Wrong media type and garbage: precise errors, and a malformed report is still kept.
    let bad = web::request(
        http,
        "POST",
        "/api/v1/fbl",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some("{}"),
    )
    .await;
    assert_eq!(bad.status, 415);
    let junk = web::request(
        http,
        "POST",
        "/api/v1/fbl",
        &[("Authorization", &auth), ("Content-Type", "message/rfc822")],
        Some("not a report at all"),
    )
    .await;
    assert_eq!(junk.status, 202);
    assert!(junk.json()["attributed"].is_null());
    let dnsbl = web::request(
        http,
        "GET",
        "/api/v1/dnsbl",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(dnsbl.status, 200, "{}", dnsbl.text());
}
