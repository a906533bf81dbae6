//! End to end, SRS (SPEC §2.5, §9; issue 16 item 11): mail a connector forwards from a domain no
//! tenant owns reaches the destination with an `SRS0=…@<[srs] domain>` envelope sender from the
//! relay pool (the original sender stays in the trace); a DSN sent to that address on the `fbl`
//! listener is reversed and delivered, with a null sender from the high-risk pool, to the
//! original sender's MX; a forged or malformed SRS address is refused at RCPT with `550 5.1.1`.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, scene};
use outguard_proto::srs::Srs;
use outguard_store::Store;

const WAIT: Duration = Duration::from_secs(30);

const SRS: &str = r#"
[fbl]
domains = ["fbl.outguard.test"]

[srs]
domain = "srs.outguard.test"
secret = "e2e-secret-of-at-least-16-bytes"
max_age = "21d"
"#;

fn forwarded(i: usize) -> String {
    format!(
        "From: Alice <alice@orig.example>\r\nTo: x@dest.example\r\nSubject: Minutes of the meeting {i}\r\nMessage-ID: <fwd.{i}@orig.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHi, the minutes of this week's meeting are below. Regards, Alice\r\n"
    )
}

fn dsn(to: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.dest.example\r\nTo: <{to}>\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"dsnb\"\r\n\r\n\
--dsnb\r\nContent-Type: text/plain\r\n\r\nx@dest.example: mailbox full.\r\n\
--dsnb\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.example\r\n\r\n\
Final-Recipient: rfc822; x@dest.example\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n--dsnb--\r\n"
    )
}

async fn scene_with_orig() -> Scene {
    let sc = scene(SRS).await;
    // The original sender's domain: owned by no tenant, its MX is the `home` sink (127.0.0.11).
    sc.dns.update(|z| {
        z.mx("orig.example", 10, "mx.orig.example")
            .a("mx.orig.example", [127, 0, 0, 11].into());
    });
    // Tenant a's connector is an operator-marked forwarder (SPEC §9).
    sc.provision_with(true).await;
    sc
}

/// RCPT on the fbl listener after a null MAIL FROM: the reply to RCPT.
async fn rcpt_on_fbl(relay: &RelayProc, to: &str) -> String {
    let (mut c, _) = Client::connect(relay.addr("fbl")).await;
    c.cmd("EHLO mx.dest.example").await;
    let r = c.cmd("MAIL FROM:<>").await;
    assert!(r.starts_with("250"), "{r}");
    c.cmd(&format!("RCPT TO:<{to}>")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_mail_leaves_with_srs0_and_its_bounce_is_reversed() {
    let sc = scene_with_orig().await;
    let relay = RelayProc::start(sc.dir());

    // 1. Forwarded through the connector (127.0.0.0/8 → tenant a): relay pool, SRS0 sender.
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "alice@orig.example",
        &["x@dest.example"],
        &forwarded(1),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let id = queued_id(&r);
    let got = sc.dest.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let srs_from = got[0].mail_from.clone();
    assert!(
        srs_from.starts_with("SRS0=")
            && srs_from.ends_with("=orig.example=alice@srs.outguard.test"),
        "delivered MAIL FROM: {srs_from}"
    );
    assert_eq!(got[0].peer.ip(), "127.0.0.4".parse::<IpAddr>().unwrap());
    // The trace keeps the original sender.
    let url = format!(
        "sqlite://{}?mode=rwc",
        sc.dir().join("data/outguard.db").display()
    );
    let st = Store::open(&url).await.expect("store");
    // The trace is written behind the queue: wait for it.
    let deadline = std::time::Instant::now() + WAIT;
    let (rec, events) = loop {
        let rec = st.message(&id).await.expect("store");
        let events = st.events(&id).await.expect("events");
        let named = events.iter().any(|e| e.detail.contains(&srs_from));
        match rec {
            Some(r) if named => break (r, events),
            _ if std::time::Instant::now() > deadline => {
                panic!("no trace event names the SRS sender: {events:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert_eq!(rec.mail_from, "alice@orig.example");
    assert_eq!(rec.pool.as_deref(), Some("relay"));
    assert!(events.iter().any(|e| e.detail.contains("rewritten by SRS")));

    // 2. The destination bounces to the SRS address: reversed to alice's MX, null sender, high-risk.
    let r = Client::send_mail(relay.addr("fbl"), None, "", &[&srs_from], &dsn(&srs_from)).await;
    assert!(r.starts_with("250"), "{r}");
    let home = sc.home.wait_for(1, WAIT).await;
    assert_eq!(home.len(), 1, "the bounce reached alice's MX");
    assert_eq!(home[0].rcpts, vec!["alice@orig.example".to_string()]);
    assert_eq!(
        home[0].mail_from, "",
        "a reversed bounce has a null reverse-path"
    );
    assert_eq!(home[0].peer.ip(), "127.0.0.3".parse::<IpAddr>().unwrap());
    assert!(String::from_utf8_lossy(&home[0].data).contains("Status: 5.2.2"));
    // Folded by a remote MTA: still ours, still verified.
    let r = rcpt_on_fbl(&relay, &srs_from.to_ascii_lowercase()).await;
    assert!(r.starts_with("250"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_malformed_srs_addresses_get_550_5_1_1_at_rcpt() {
    let sc = scene_with_orig().await;
    let relay = RelayProc::start(sc.dir());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let ours = Srs::new(b"e2e-secret-of-at-least-16-bytes", "srs.outguard.test", 21);
    let srs_from = ours.forward("alice@orig.example", now).expect("mint");
    // Forged, expired, malformed and unknown SRS addresses: 550 5.1.1 at RCPT.
    let forged = format!("SRS0=AAAA{}", &srs_from[9..]);
    assert_ne!(forged, srs_from);
    // Minted with our secret 30 days ago: a genuine address past max_age.
    let old = ours
        .forward("alice@orig.example", now - 30 * 86_400)
        .expect("mint");
    for (to, text) in [
        (
            forged.as_str(),
            "550 5.1.1 Invalid SRS address: hash does not match",
        ),
        (old.as_str(), "550 5.1.1 Invalid SRS address: expired"),
        (
            "SRS0=abcd=AA=orig.example@srs.outguard.test",
            "550 5.1.1 Invalid SRS address: malformed",
        ),
        (
            "postmaster@srs.outguard.test",
            "550 5.1.1 Invalid SRS address: malformed",
        ),
    ] {
        let r = rcpt_on_fbl(&relay, to).await;
        assert_eq!(r, text, "RCPT TO:<{to}>");
    }
    // Nothing was delivered because of them; the genuine address is accepted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sc.home.messages().is_empty());
    let r = rcpt_on_fbl(&relay, &srs_from).await;
    assert!(r.starts_with("250"), "{r}");
}

/// `check-config`: a weak secret or a bad domain exits 64 naming the key; no `[srs]` is valid
/// but warned about.
#[test]
fn check_config_validates_srs_and_warns_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |text: &str| {
        let f = dir.path().join("c.toml");
        std::fs::write(&f, text).expect("write");
        let out = std::process::Command::new(common::BIN)
            .arg("check-config")
            .arg(&f)
            .output()
            .expect("run");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run("[srs]\ndomain = \"srs.x.example\"\nsecret = \"too-short\"\n");
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("srs.secret") && err.contains("line 3") && err.contains("16 bytes"),
        "{err}"
    );
    let (code, err) = run("[srs]\ndomain = \"srs x\"\nsecret = \"0123456789abcdef\"\n");
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("srs.domain") && err.contains("line 2"),
        "{err}"
    );
    let (code, err) = run("[srs]\ndomain = \"srs.x.example\"\nsecret = \"0123456789abcdef\"\n");
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    let (code, err) = run("[server]\nhostname = \"x.example\"\n");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: [srs] is not configured"), "{err}");
}
