//! End to end, SPEC §9 "Reports are believed only from trusted reporters" (issue 16 items 7–9):
//! anonymous ARF reports and DSNs sent to the real `fbl` listener from several loopback source
//! IPs are kept with `"trusted": false` and change nothing (no complaint or bounce counted, no
//! restriction, no overlay learning); a trusted reporter (`[fbl] trusted_reporters`, or a valid
//! DKIM signature of a `trusted_dkim_domains` domain) counts once per message, a DSN only for
//! the message's real recipients, and a complaint trains only with the copy Outguard sent;
//! reports are capped in size and in rate per source IP; the API lists metadata and serves the
//! raw report on its own URL.

mod common;

#[path = "web/mod.rs"]
mod web;

use std::net::IpAddr;
use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, scene};
use outguard_store::Store;

const WAIT: Duration = Duration::from_secs(30);

/// Thresholds so low that a handful of counted complaints or bounces restricts: 0.3 of at
/// least one delivered recipient.
const FBL_LOW: &str = r#"
[fbl]
domains = ["fbl.outguard.test"]
min_messages = 1
complaint_alert_rate = 0.1
complaint_restrict_rate = 0.3
"#;

/// The same with one trusted reporter IP and one trusted DKIM domain; bounces restrict at 50 %.
const FBL_TRUSTED: &str = r#"
[fbl]
domains = ["fbl.outguard.test"]
min_messages = 1
complaint_alert_rate = 0.1
complaint_restrict_rate = 0.3
bounce_rate = 0.5
trusted_reporters = ["127.0.0.21/32"]
trusted_dkim_domains = ["isp.example"]
"#;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Tenant globex (globex.example) with news@, promo@ and bob@ beside the scene's a and b.
async fn provision_globex(sc: &Scene) {
    sc.provision().await;
    let st = store(sc).await;
    st.add_tenant("globex", 1).await.expect("tenant");
    st.add_domain("globex", "globex.example")
        .await
        .expect("domain");
    for who in ["news", "promo", "bob"] {
        st.add_account(
            "globex",
            &format!("{who}@globex.example"),
            Some("globex-pw"),
            1,
        )
        .await
        .expect("account");
    }
    st.close().await;
}

async fn store(sc: &Scene) -> Store {
    let url = format!(
        "sqlite://{}?mode=rwc",
        sc.dir().join("data/outguard.db").display()
    );
    Store::open(&url).await.expect("store")
}

/// globex's clean newsletter (the same text every week, a new Message-ID each time).
fn newsletter(from: &str, n: u32) -> String {
    format!(
        "From: Globex News <{from}>\r\nTo: subscribers@dest.example\r\nSubject: Globex news for our customers\r\n\
Message-ID: <news.{n}.{from}>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n\
Hello,\r\n\r\nthis month our engineering team shipped the new release of the reporting tool,\r\n\
the support desk moved to the new office, and the quarterly meeting is on Thursday.\r\n\r\n\
Thank you for working with Globex.\r\nThe Globex team\r\n"
    )
}

/// `n` recipients `{prefix}{i}@dest.example`.
fn rcpts(prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{prefix}{i}@dest.example"))
        .collect()
}

/// Sends the newsletter from `from` to `to`, waits for its delivery and for its record in the
/// store; returns (message id, the copy as delivered).
async fn send_newsletter(
    sc: &Scene,
    relay: &RelayProc,
    from: &str,
    to: &[String],
    n: u32,
) -> (String, String) {
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let before = sc.dest.messages().len();
    let r = Client::send_mail(
        relay.addr("submission"),
        Some((from, "globex-pw")),
        from,
        &to,
        &newsletter(from, n),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let id = queued_id(&r);
    let got = sc.dest.wait_for(before + 1, WAIT).await;
    let copy = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .find(|m| m.contains(&format!("X-Outguard-Id: {id}")))
        .expect("delivered copy");
    let st = store(sc).await;
    for _ in 0..200 {
        if st.message(&id).await.expect("store").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    st.close().await;
    (id, copy)
}

/// An ARF abuse report with the full original attached.
fn arf(original: &str) -> String {
    format!(
        "From: feedback@isp.example\r\nTo: fbl@fbl.outguard.test\r\nSubject: FW: complaint\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arfb\"\r\n\r\n\
--arfb\r\nContent-Type: text/plain\r\n\r\nA user complained.\r\n\
--arfb\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: IspFBL/1.0\r\nVersion: 1\r\n\r\n\
--arfb\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n--arfb--\r\n"
    )
}

/// A DSN about `delivered` (its headers returned) failing every one of `failed` with 5.1.1.
fn dsn(delivered: &str, failed: &[String]) -> String {
    let headers = delivered.split("\r\n\r\n").next().unwrap_or_default();
    let mut per_rcpt = String::new();
    for r in failed {
        per_rcpt.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
    }
    format!(
        "From: MAILER-DAEMON@mx.dest.example\r\nTo: bounces@fbl.outguard.test\r\nSubject: Undelivered Mail\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"dsnb\"\r\n\r\n\
--dsnb\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
--dsnb\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.example\r\n{per_rcpt}\r\n\
--dsnb\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n--dsnb--\r\n"
    )
}

async fn report_from(relay: &RelayProc, src: IpAddr, body: &str) -> String {
    Client::send_mail_from(
        src,
        relay.addr("fbl"),
        "feedback@isp.example",
        &["fbl@fbl.outguard.test"],
        body,
    )
    .await
}

async fn api(relay: &RelayProc, method: &str, path: &str, body: Option<&str>) -> web::Response {
    let auth = format!("Bearer {}", relay.token.clone().expect("operator token"));
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "message/rfc822"));
    }
    web::request(relay.addr("http"), method, path, &headers, body).await
}

/// A new tenant_admin token of `tenant`, made through the API.
async fn tenant_admin(relay: &RelayProc, tenant: &str) -> String {
    let tok = web::request(
        relay.addr("http"),
        "POST",
        "/api/v1/tokens",
        &[(
            "Authorization",
            &format!("Bearer {}", relay.token.clone().expect("token")),
        )],
        Some(&format!(r#"{{"role":"tenant_admin","tenant":"{tenant}"}}"#)),
    )
    .await;
    assert_eq!(tok.status, 201, "{}", tok.text());
    let secret = tok.json()["secret"].as_str().expect("secret").to_string();
    format!("Bearer {secret}")
}

fn restricted(sc: &Scene) -> String {
    sc.ok(&["restricted", "list", "--json"])
}

async fn wait_restricted(sc: &Scene, relay: &RelayProc, who: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let list = restricted(sc);
        if list.contains(who) {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{who} not restricted; stderr:\n{}",
            relay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn overlay(sc: &Scene) -> Option<Vec<u8>> {
    let st = store(sc).await;
    let blob = st.get_blob("spam-overlay:globex").await.expect("blob");
    st.close().await;
    blob
}

/// Item 7 and 8: four anonymous ARF reports from four source IPs about one newsletter (whole
/// copy attached) are kept untrusted and change nothing; the API lists their metadata only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_complaints_are_kept_untrusted_and_change_nothing() {
    let sc = scene(FBL_LOW).await;
    provision_globex(&sc).await;
    let relay = RelayProc::start(sc.dir());
    let (id, copy) = send_newsletter(&sc, &relay, "news@globex.example", &rcpts("sub", 3), 1).await;
    for last in 21..=24 {
        let r = report_from(&relay, ip(last), &arf(&copy)).await;
        assert!(r.starts_with("250 2.0.0"), "{r}");
    }
    let list = api(&relay, "GET", "/api/v1/fbl", None).await;
    assert_eq!(list.status, 200, "{}", list.text());
    let recs = list.json();
    let recs = recs.as_array().expect("array").clone();
    assert_eq!(recs.len(), 4, "{recs:?}");
    for r in &recs {
        assert_eq!(r["trusted"], false, "{r}");
        assert_eq!(r["attributed"]["tenant"], "globex", "{r}");
        assert!(r.get("raw").is_none(), "metadata only: {r}");
    }
    assert!(
        !list.text().contains("engineering team"),
        "no raw body in the list"
    );
    // The raw report is on its own URL, as received.
    let rid = recs[0]["id"].as_str().expect("id");
    let raw = api(&relay, "GET", &format!("/api/v1/fbl/{rid}/raw"), None).await;
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert!(
        raw.text().contains("Feedback-Type: abuse"),
        "{}",
        raw.text()
    );
    assert!(raw.text().contains("engineering team"));
    let one = api(&relay, "GET", &format!("/api/v1/fbl/{rid}"), None).await;
    assert_eq!(one.status, 200);
    assert!(one.json().get("raw").is_none(), "{}", one.text());

    // Nothing counted: no alert, no restriction, no complaint on the message's trace.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!restricted(&sc).contains("news@globex.example"));
    let alerts = sc.ok(&["alerts", "--kind", "complaint_rate_exceeded", "--json"]);
    assert!(!alerts.contains("globex"), "{alerts}");
    assert!(!sc.ok(&["trace", "--id", &id]).contains("complaint"));

    // Nothing learned: globex's overlay is untouched and the next identical newsletter is
    // not TENANT_LEARNED.
    assert!(overlay(&sc).await.is_none(), "anonymous report trained");
    let (next, _) = send_newsletter(&sc, &relay, "news@globex.example", &rcpts("sub", 3), 2).await;
    let trace = sc.ok(&["trace", "--id", &next]);
    assert!(!trace.contains("TENANT_LEARNED"), "{trace}");

    // A tenant admin of globex sees none of the untrusted reports, nor their raw text, and
    // cannot post a report (it would make complaints count at will).
    let auth = tenant_admin(&relay, "globex").await;
    let as_tenant = |method: &'static str, path: String, body: Option<String>| {
        let auth = auth.clone();
        let http = relay.addr("http");
        async move {
            let mut h = vec![("Authorization", auth.as_str())];
            if body.is_some() {
                h.push(("Content-Type", "message/rfc822"));
            }
            web::request(http, method, &path, &h, body.as_deref()).await
        }
    };
    let theirs = as_tenant("GET", "/api/v1/fbl".into(), None).await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.json(), serde_json::json!([]), "{}", theirs.text());
    let raw = as_tenant("GET", format!("/api/v1/fbl/{rid}/raw"), None).await;
    assert_eq!(raw.status, 404, "{}", raw.text());
    let post = as_tenant("POST", "/api/v1/fbl".into(), Some(arf(&copy))).await;
    assert_eq!(post.status, 403, "{}", post.text());
    assert_eq!(
        api(&relay, "GET", "/api/v1/fbl", None)
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(4),
        "nothing stored for the refused POST"
    );
}

/// Item 7: one anonymous DSN listing 110 hard-bounced recipients the message never had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_dsn_counts_nothing() {
    let sc = scene(&format!("{FBL_LOW}bounce_rate = 0.3\n")).await;
    provision_globex(&sc).await;
    let relay = RelayProc::start(sc.dir());
    let (id, copy) = send_newsletter(&sc, &relay, "bob@globex.example", &rcpts("r", 3), 1).await;
    let r = report_from(&relay, ip(22), &dsn(&copy, &rcpts("fake", 110))).await;
    assert!(r.starts_with("250"), "{r}");
    // The bounce watcher polls every second.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let trace = sc.ok(&["trace", "--id", &id, "--json"]);
    assert!(!trace.contains("\"bounced\""), "{trace}");
    assert!(
        !restricted(&sc).contains("bob@globex.example"),
        "restricted by a forged DSN"
    );
    let recs = api(&relay, "GET", "/api/v1/fbl", None).await.json();
    assert_eq!(recs[0]["trusted"], false, "{recs}");
    assert_eq!(recs[0]["feedback_type"], "delivery-status");
}

/// Item 9: a 2 MB report is refused by SMTP (552 5.3.4) and by the API (413); the 61st report
/// in a minute from one source IP gets 451 4.7.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_capped_in_size_and_rate() {
    let sc = scene(FBL_LOW).await;
    // Mail itself may be large here: only the report cap may refuse.
    let path = sc.dir().join("outguard.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace(
            "max_message_size = \"200KB\"",
            "max_message_size = \"20MB\"",
        ),
    )
    .expect("config");
    provision_globex(&sc).await;
    let relay = RelayProc::start(sc.dir());
    let junk = format!(
        "From: x@isp.example\r\nSubject: junk\r\n\r\n{}\r\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n".repeat(32 * 1024)
    );
    assert!(junk.len() > 2_000_000);
    let r = report_from(&relay, ip(26), &junk).await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    let resp = api(&relay, "POST", "/api/v1/fbl", Some(&junk)).await;
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(resp.json()["error"]["code"], "too_large", "{}", resp.text());
    let recs = api(&relay, "GET", "/api/v1/fbl", None).await.json();
    assert_eq!(recs, serde_json::json!([]), "nothing stored");

    let small = "From: x@isp.example\r\nSubject: junk\r\n\r\nnot a report\r\n";
    for i in 0..60 {
        let r = report_from(&relay, ip(30), small).await;
        assert!(r.starts_with("250"), "report {i}: {r}");
    }
    let r = report_from(&relay, ip(30), small).await;
    assert!(r.starts_with("451 4.7.0"), "{r}");
    // Another source is not held back.
    let r = report_from(&relay, ip(31), small).await;
    assert!(r.starts_with("250"), "{r}");
}

/// Item 7: a trusted reporter's complaint counts, but once per message however often it is
/// sent: 1 of 5 recipients alerts (10 %), 2 would restrict (30 %).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_reporter_counts_a_message_once() {
    let sc = scene(FBL_TRUSTED).await;
    provision_globex(&sc).await;
    let relay = RelayProc::start(sc.dir());
    let (id, copy) = send_newsletter(&sc, &relay, "news@globex.example", &rcpts("sub", 5), 1).await;
    for _ in 0..4 {
        let r = report_from(&relay, ip(21), &arf(&copy)).await;
        assert!(r.starts_with("250 2.0.0"), "{r}");
    }
    let r = report_from(&relay, ip(22), &arf(&copy)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let recs = api(&relay, "GET", "/api/v1/fbl", None).await.json();
    let recs = recs.as_array().expect("array").clone();
    assert_eq!(recs.len(), 5);
    assert_eq!(recs.iter().filter(|r| r["trusted"] == true).count(), 4);
    let alerts = sc.ok(&["alerts", "--kind", "complaint_rate_exceeded", "--json"]);
    assert!(
        alerts.contains("news@globex.example: 1 complaints for 5 delivered recipients"),
        "{alerts}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        !restricted(&sc).contains("news@globex.example"),
        "counted more than once"
    );
    assert!(sc.ok(&["trace", "--id", &id]).contains("complaint"));
    // globex's admin sees its trusted reports (not the anonymous one) and their raw text.
    let auth = tenant_admin(&relay, "globex").await;
    let http = relay.addr("http");
    let theirs = web::request(
        http,
        "GET",
        "/api/v1/fbl",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    let theirs = theirs.json();
    let theirs = theirs.as_array().expect("array");
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    let rid = theirs[0]["id"].as_str().expect("id");
    let raw = web::request(
        http,
        "GET",
        &format!("/api/v1/fbl/{rid}/raw"),
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert_eq!(raw.header("content-type"), Some("message/rfc822"));
    assert!(raw.text().contains("Feedback-Type: abuse"));
}

/// The new `[fbl]` keys are checked before anything binds: exit 64 naming the key.
#[test]
fn check_config_names_bad_fbl_keys() {
    for (text, key) in [
        (
            "trusted_reporters = [\"10.0.0.300\"]",
            "fbl.trusted_reporters",
        ),
        (
            "trusted_dkim_domains = [\"no dots\"]",
            "fbl.trusted_dkim_domains",
        ),
        ("max_report_size = \"12\"", "fbl.max_report_size"),
        (
            "reports_per_minute_per_ip = 0",
            "fbl.reports_per_minute_per_ip",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, format!("[fbl]\n{text}\n")).expect("write");
        let out = std::process::Command::new(common::BIN)
            .arg("check-config")
            .arg(&f)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
    }
}

/// Item 7: a trusted DSN counts only the recipients the message really had, once each:
/// 110 strangers and 2 real recipients, sent twice → 2 of 5 (under 50 %); one more real
/// recipient → 3 of 5 restricts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_dsn_counts_only_real_recipients_once() {
    let sc = scene(FBL_TRUSTED).await;
    provision_globex(&sc).await;
    let relay = RelayProc::start(sc.dir());
    let real = rcpts("r", 5);
    let (id, copy) = send_newsletter(&sc, &relay, "bob@globex.example", &real, 1).await;
    let mut failed = rcpts("fake", 110);
    failed.extend_from_slice(&real[..2]);
    for _ in 0..2 {
        let r = report_from(&relay, ip(21), &dsn(&copy, &failed)).await;
        assert!(r.starts_with("250"), "{r}");
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let trace = sc.ok(&["trace", "--id", &id, "--json"]);
    assert!(trace.contains("\"bounced\""), "{trace}");
    assert!(trace.contains("r1@dest.example"), "{trace}");
    assert!(!trace.contains("fake1@dest.example"), "{trace}");
    assert!(
        !restricted(&sc).contains("bob@globex.example"),
        "more than 2 bounces counted"
    );
    let r = report_from(&relay, ip(21), &dsn(&copy, &real[2..3])).await;
    assert!(r.starts_with("250"), "{r}");
    let list = wait_restricted(&sc, &relay, "bob@globex.example").await;
    assert!(list.contains("bounce_rate"), "{list}");
}

/// Item 8: a trusted complaint whose attached copy was altered counts but does not train; a
/// DKIM-signed report (trusted domain, untrusted IP) with the copy as sent counts and trains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_copy_does_not_train_and_dkim_signed_reports_count() {
    use base64::Engine as _;
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter as _;
    use mail_auth::dkim::DkimSigner;

    let sc = scene(FBL_TRUSTED).await;
    let pkcs8 = Ed25519Key::generate_pkcs8().expect("key");
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).expect("key");
    let b64 = base64::engine::general_purpose::STANDARD;
    let txt = format!("v=DKIM1; k=ed25519; p={}", b64.encode(key.public_key()));
    sc.dns.update(|z| {
        z.txt("fbl._domainkey.isp.example", &txt);
    });
    provision_globex(&sc).await;
    let relay = RelayProc::start(sc.dir());
    let (_, copy) = send_newsletter(&sc, &relay, "promo@globex.example", &rcpts("p", 5), 1).await;
    let altered = copy.replace(
        "the support desk moved to the new office",
        "CHEAP PILLS cheap pills buy now casino winner",
    );
    assert_ne!(altered, copy);
    let r = report_from(&relay, ip(21), &arf(&altered)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let alerts = sc.ok(&["alerts", "--kind", "complaint_rate_exceeded", "--json"]);
    assert!(
        alerts.contains("promo@globex.example: 1 complaints"),
        "the altered copy still counts: {alerts}"
    );
    assert!(
        overlay(&sc).await.is_none(),
        "an altered copy trained the overlay"
    );

    // Signed by a trusted domain, sent from an untrusted IP, with the copy as sent.
    let report = arf(&copy);
    let sig = DkimSigner::from_key(key)
        .domain("isp.example")
        .selector("fbl")
        .headers(["From", "To", "Subject", "Content-Type"])
        .sign(report.as_bytes())
        .expect("sign");
    let signed = format!("{}{report}", sig.to_header());
    let r = report_from(&relay, ip(25), &signed).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let list = wait_restricted(&sc, &relay, "promo@globex.example").await;
    assert!(list.contains("complaint_rate"), "{list}");
    assert!(
        overlay(&sc).await.is_some(),
        "the copy as sent trains the overlay"
    );
    let recs = api(&relay, "GET", "/api/v1/fbl", None).await.json();
    assert!(
        recs.as_array()
            .expect("array")
            .iter()
            .all(|r| r["trusted"] == true),
        "{recs}"
    );
}
