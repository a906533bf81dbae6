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

/// The test's reports come from 127.0.0.1, which this config trusts (SPEC §9: only trusted
/// reporters count; tests/fbl_trust.rs covers the untrusted ones).
const FBL: &str = r#"
[fbl]
domains = ["fbl.outguard.test"]
trusted_reporters = ["127.0.0.1/32"]
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
    let malformed = recs
        .iter()
        .find(|r| r.malformed.is_some() && r.attributed.is_none())
        .expect("malformed kept");
    let raw = st.fbl_report_raw(&malformed.id).await.expect("raw");
    assert!(
        String::from_utf8_lossy(&raw.expect("raw kept")).contains("stop it"),
        "malformed kept as received"
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
    let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../relay/tests/fixtures/arf");
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
        fx.join("../dsn-in/postfix-headers.eml")
            .to_str()
            .expect("path"),
        "--json",
    ]);
    let recs: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(recs.len(), 4, "{out}");
    assert_eq!(recs[3]["feedback_type"], "delivery-status", "{out}");
    assert_eq!(recs[3]["fields"]["recipients"][0]["status"], "5.1.1");
    assert_eq!(recs[0]["feedback_type"], "abuse");
    assert!(recs[1]["malformed"].is_string(), "{out}");
    assert_eq!(recs[2]["fields"]["original"], "headers");
    // Each imported report is audited once, as a posted one is (issue 15).
    let url = format!("sqlite://{}", sc.dir().join("data/outguard.db").display());
    let store = outguard_store::Store::open(&url).await.expect("store");
    let log = store.audit_log(100).await.expect("audit log");
    store.close().await;
    let imported: Vec<_> = log
        .iter()
        .filter(|e| e.action == "fbl.import" && e.actor == "cli")
        .map(|e| e.target.clone())
        .collect();
    assert_eq!(imported.len(), 4, "{log:?}");
    for r in &recs {
        assert!(imported.contains(&r["id"].as_str().expect("id").to_string()));
    }
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

/// A Postfix-style DSN about `delivered` (its headers returned, `X-Outguard-Id` included) for
/// `rcpt`, with `action` and `status`.
fn dsn(delivered: &str, rcpt: &str, action: &str, status: &str) -> String {
    let headers = delivered.split("\r\n\r\n").next().unwrap_or_default();
    format!(
        "From: MAILER-DAEMON@mx.dest.example (Mail Delivery System)\r\nTo: bounces@fbl.outguard.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"dsnb\"\r\n\r\n\
--dsnb\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
--dsnb\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.example\r\n\r\n\
Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n\
Diagnostic-Code: smtp; 550 {status} mailbox unavailable\r\n\r\n\
--dsnb\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n--dsnb--\r\n"
    )
}

/// An Exchange-style NDR returning the whole original without our header (attributed by its
/// Message-ID through the trace).
fn exchange_ndr(message_id: &str, rcpt: &str) -> String {
    format!(
        "From: Microsoft Outlook <MicrosoftExchange329e71ec@dest.example>\r\nTo: <bounces@fbl.outguard.test>\r\n\
Subject: Undeliverable: Project update\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"ex-ndr\"\r\n\r\n\
--ex-ndr\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\nYour message couldn't be delivered.\r\n\r\n\
--ex-ndr\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;EX01.dest.example\r\n\r\n\
Original-Recipient: rfc822;{rcpt}\r\nFinal-Recipient: rfc822;{rcpt}\r\nAction: failed\r\nStatus: 5.1.10\r\n\
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not\r\n found by SMTP address lookup\r\n\r\n\
--ex-ndr\r\nContent-Type: message/rfc822\r\n\r\nFrom: <alice@a.example>\r\nTo: <{rcpt}>\r\n\
Subject: Project update\r\nMessage-ID: <{message_id}>\r\n\r\nHi.\r\n\r\n--ex-ndr--\r\n"
    )
}

async fn bounced_events(sc: &Scene, id: &str) -> usize {
    let out = sc.ok(&["trace", "--id", id, "--json"]);
    out.matches("\"bounced\"").count()
}

async fn wait_restricted(sc: &Scene, relay: &RelayProc, who: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let restricted = sc.ok(&["restricted", "list", "--json"]);
        if restricted.contains(who) {
            return restricted;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{who} not restricted; stderr:\n{}",
            relay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Asynchronous bounces: messages relayed and accepted by the destination, then DSNs about
/// them sent back to the `fbl` listener (null sender) and to `POST /api/v1/fbl` → attributed
/// (by `X-Outguard-Id`, and by Message-ID for an Exchange NDR), traced as `bounced`, counted
/// as hard bounces; a delay and a malformed DSN are kept but never counted; 4 hard bounces
/// among 10 delivered recipients cross the (test-sized) bounce rate and restrict the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsns_after_delivery_are_attributed_counted_and_restrict() {
    let sc = scene(&format!("{FBL}bounce_rate = 0.3\n")).await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let token = relay.token.clone().expect("operator token on first start");
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
    let delivered = |id: &str| {
        let m = got
            .iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains(&format!("X-Outguard-Id: {id}")))
            .expect("delivered copy");
        String::from_utf8_lossy(&m.data).into_owned()
    };
    let st = store(&sc).await;
    for id in &ids {
        for _ in 0..200 {
            if st.message(id).await.expect("store").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let fbl_addr = relay.addr("fbl");
    let send_dsn = |body: String| async move {
        Client::send_mail(fbl_addr, None, "", &["bounces@fbl.outguard.test"], &body).await
    };

    // Two hard bounces (Postfix style, our id in the returned headers), one delay, one
    // malformed DSN.
    for id in &ids[..2] {
        let r = send_dsn(dsn(&delivered(id), "x@dest.example", "failed", "5.1.1")).await;
        assert!(r.starts_with("250 2.0.0 Ok: report "), "{r}");
    }
    let r = send_dsn(dsn(
        &delivered(&ids[2]),
        "x@dest.example",
        "delayed",
        "4.4.1",
    ))
    .await;
    assert!(r.starts_with("250"), "{r}");
    let r = send_dsn(
        "From: MAILER-DAEMON@mx.dest.example\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"z\"\r\n\r\n--z\r\n\
Content-Type: text/plain\r\n\r\nlost the status part\r\n--z--\r\n"
            .to_string(),
    )
    .await;
    assert!(r.starts_with("250"), "a malformed DSN is kept: {r}");
    let recs = st.list_fbl_reports(None, 20).await.expect("reports");
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert!(recs.iter().all(|r| r.feedback_type == "delivery-status"));
    assert_eq!(recs.iter().filter(|r| r.malformed.is_some()).count(), 1);
    let hard: Vec<_> = recs
        .iter()
        .filter(|r| r.fields["recipients"][0]["hard"] == true)
        .collect();
    assert_eq!(hard.len(), 2);
    for r in &hard {
        let att = r.attributed.clone().expect("attributed");
        assert_eq!(
            (att.account.as_deref(), att.tenant.as_deref()),
            (Some("alice@a.example"), Some("a"))
        );
    }
    let deadline = std::time::Instant::now() + WAIT;
    while bounced_events(&sc, &ids[0]).await + bounced_events(&sc, &ids[1]).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no bounced trace events"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        bounced_events(&sc, &ids[2]).await,
        0,
        "a delay is not a bounce"
    );
    assert!(sc.ok(&["trace", "--id", &ids[2]]).contains("dsn"));
    // 2 of 10 is under the rate: give the watcher (1 s poll) time to count, then check.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        !sc.ok(&["restricted", "list", "--json"])
            .contains("alice@a.example"),
        "restricted on 2/10 hard bounces (or on the delay / the malformed DSN)"
    );

    // Two more: an Exchange NDR by SMTP (Message-ID via the trace) and a DSN by the API.
    let r = send_dsn(exchange_ndr("update.3@a.example", "x@dest.example")).await;
    assert!(r.starts_with("250"), "{r}");
    let resp = web::request(
        relay.addr("http"),
        "POST",
        "/api/v1/fbl",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "message/rfc822"),
        ],
        Some(&dsn(
            &delivered(&ids[4]),
            "x@dest.example",
            "failed",
            "5.2.1",
        )),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["attributed"]["message_id"], ids[4].as_str());
    let restricted = wait_restricted(&sc, &relay, "alice@a.example").await;
    assert!(restricted.contains("bounce_rate"), "{restricted}");
    assert!(
        bounced_events(&sc, &ids[3]).await >= 1,
        "the NDR is on message 3"
    );
    let alerts = sc.ok(&["alerts", "--kind", "suspicious_sending_pattern", "--json"]);
    assert!(alerts.contains("hard bounces"), "{alerts}");
    st.close().await;
}
