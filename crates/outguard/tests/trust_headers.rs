//! End to end, SPEC §9 "SMTP input", the header rules (issue 14 items 3 and 4): a message has
//! exactly one `From:` field naming 1–100 owned addresses, else `550 5.6.0` (on submission,
//! submissions and connector) and nothing reaches the next hop; a submitted `X-Outguard-*` header never survives submission, and a complaint
//! whose attached copy carries two `X-Outguard-Id` fields is pinned on the first, ours.

mod common;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, scene};
use outguard_store::Store;

const WAIT: Duration = Duration::from_secs(30);

/// A plain, clean message under the given `From:`-ish header lines.
fn mail(head: &str, n: usize) -> String {
    format!(
        "{head}\r\nTo: x@dest.example\r\nSubject: Minutes {n}\r\nMessage-ID: <minutes.{n}@a.example>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHi, the minutes of meeting {n} are below. Regards\r\n"
    )
}

fn list(addrs: impl Iterator<Item = String>) -> String {
    addrs.collect::<Vec<_>>().join(",\r\n ")
}

/// One message to x@dest.example through `listener`; the reply to the final dot (or the first
/// refusal).
async fn send(
    sc: &Scene,
    relay: &RelayProc,
    listener: &str,
    auth: Option<(&str, &str)>,
    from: &str,
    data: &str,
) -> String {
    let addr = relay.addr(listener);
    if listener == "submissions" {
        let root = sc.dir().join("data/tls/selfsigned.crt");
        return Client::send_mail_tls(addr, &root, auth, from, &["x@dest.example"], data).await;
    }
    Client::send_mail(addr, auth, from, &["x@dest.example"], data).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_must_be_one_field_with_one_to_a_hundred_owned_addresses() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let alice = Some(("alice@a.example", "alice-pw"));
    let listeners = [
        ("submission", alice, "alice@a.example"),
        ("submissions", alice, "alice@a.example"),
        ("connector", None, "bob@a.example"),
    ];
    let exactly_one = "550 5.6.0 Exactly one From: field required";
    let refused: Vec<(String, String)> = vec![
        (
            "From: CEO <ceo@b.example>\r\nFrom: {me}".into(),
            format!("{exactly_one}, found 2"),
        ),
        (
            "from: {me}\r\nSubject: x\r\nFROM:\r\n CEO <ceo@b.example>".into(),
            format!("{exactly_one}, found 2"),
        ),
        ("Sender: {me}".into(), format!("{exactly_one}, found none")),
        (
            "From: undisclosed-recipients:;\r\nSender: {me}".into(),
            "550 5.6.0 From: field names no address".into(),
        ),
        (
            "From: \"ceo@b.example\"\r\nSender: {me}".into(),
            "550 5.6.0 From: field has a name without an address".into(),
        ),
        (
            format!("From: {}", list((0..101).map(|_| "{me}".to_string()))),
            "550 5.6.0 From: field names more than 100 addresses".into(),
        ),
    ];
    let mut n = 0;
    // Every case is tried before any assertion, so a failure lists all the cases that fail.
    let mut wrong = Vec::new();
    for (listener, auth, me) in listeners {
        for (head, want) in &refused {
            n += 1;
            let head = head.replace("{me}", me);
            let r = send(&sc, &relay, listener, auth, me, &mail(&head, n)).await;
            if &r != want {
                let short: String = head.chars().take(80).collect();
                wrong.push(format!("{listener}: {short:?} → {r}"));
            }
        }
        // Still every address owned: one foreign address among owned ones is refused.
        let head = format!("From: {me}, carol@b.example");
        let r = send(&sc, &relay, listener, auth, me, &mail(&head, 99)).await;
        if r != "550 5.7.1 Sender address not owned by this account" {
            wrong.push(format!("{listener}: {head:?} → {r}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A hundred owned addresses pass: the account's own address a hundred times, and a hundred
    // distinct addresses of the connector's tenant (one domain, one ownership lookup).
    let me100 = format!("From: {}", list((0..100).map(|_| "alice@a.example".into())));
    let r = Client::send_mail(
        relay.addr("submission"),
        alice,
        "alice@a.example",
        &["x@dest.example"],
        &mail(&me100, 1000),
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    let many = format!(
        "From: {}",
        list((0..100).map(|i| format!("u{i}@a.example")))
    );
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "bob@a.example",
        &["x@dest.example"],
        &mail(&many, 1001),
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");

    // Only those two ever reach the next hop.
    let got = sc.dest.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_now = sc.dest.messages();
    assert_eq!((got.len(), got_now.len()), (2, 2));
    for m in &got_now {
        let text = String::from_utf8_lossy(&m.data);
        assert!(
            text.contains("Subject: Minutes 1000") || text.contains("Subject: Minutes 1001"),
            "{text}"
        );
    }
}

const FBL: &str = r#"
[fbl]
domains = ["fbl.outguard.test"]
"#;

/// An ARF report (abuse) with a full attached copy.
fn arf(copy: &str) -> String {
    format!(
        "From: feedback@arf.provider.example\r\nTo: fbl@fbl.outguard.test\r\nSubject: FW: complaint\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arfb\"\r\n\r\n\
--arfb\r\nContent-Type: text/plain\r\n\r\nA user complained.\r\n\
--arfb\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ProviderFBL/1.0\r\nVersion: 1\r\nSource-IP: 127.0.0.2\r\n\r\n\
--arfb\r\nContent-Type: message/rfc822\r\n\r\n{copy}\r\n--arfb--\r\n"
    )
}

async fn store(sc: &Scene) -> Store {
    let url = format!(
        "sqlite://{}?mode=rwc",
        sc.dir().join("data/outguard.db").display()
    );
    Store::open(&url).await.expect("store")
}

fn own_fields(copy: &str) -> Vec<&str> {
    let head = copy.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .filter(|l| l.to_ascii_lowercase().starts_with("x-outguard-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_outguard_headers_are_removed_and_only_ours_is_read_back() {
    let sc = scene(FBL).await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    // Alice (tenant a) sends a message: the victim's id.
    let r = Client::send_mail(
        sub,
        Some(("alice@a.example", "alice-pw")),
        "alice@a.example",
        &["x@dest.example"],
        &mail("From: alice@a.example", 1),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let victim = queued_id(&r);
    // Carol (tenant b) submits her mail with alice's id and a verdict of her own choosing.
    let forged = format!(
        "From: carol@b.example\r\nX-Outguard-Id: {victim}\r\nX-Outguard-Verdict: clean\r\nx-outguard-note: a\r\n folded one"
    );
    let r = Client::send_mail(
        sub,
        Some(("carol@b.example", "carol-pw")),
        "carol@b.example",
        &["x@dest.example"],
        &mail(&forged, 2),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let carols = queued_id(&r);

    let got = sc.dest.wait_for(2, WAIT).await;
    let copy = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .find(|t| t.contains("carol@b.example"))
        .expect("carol's copy delivered");
    assert_eq!(
        own_fields(&copy),
        [format!("X-Outguard-Id: {carols}").as_str()],
        "{copy}"
    );
    assert!(
        copy.starts_with(&format!("X-Outguard-Id: {carols}\r\n")),
        "{copy}"
    );
    assert!(!copy.contains("folded one"), "{copy}");

    // A copy that does carry a second id below ours (as every copy did before the fix) is
    // still carol's complaint, not alice's.
    let (head, body) = copy.split_once("\r\n\r\n").expect("header block");
    let two_ids = format!("{head}\r\nX-Outguard-Id: {victim}\r\n\r\n{body}");
    let r = Client::send_mail(
        relay.addr("fbl"),
        None,
        "feedback@arf.provider.example",
        &["fbl@fbl.outguard.test"],
        &arf(&two_ids),
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Ok: report "), "{r}");
    let st = store(&sc).await;
    let recs = st.list_fbl_reports(None, 10).await.expect("reports");
    assert_eq!(recs.len(), 1);
    let att = recs[0].attributed.clone().expect("attributed");
    assert_eq!(
        (att.message_id.as_str(), att.tenant.as_deref()),
        (carols.as_str(), Some("b"))
    );
    st.close().await;
}
