//! End to end, outbound: the real binary delivers through its pools to sinks found by MX in a
//! real DNS server, retries, bounces with DSNs from the high-risk pool, survives `kill -9`, and
//! takes a real external client (Python's smtplib over STARTTLS).

mod common;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};
use outguard_harness::sink::{Reply as SinkReply, Script};

const WAIT: Duration = Duration::from_secs(30);

fn text(d: &[u8]) -> String {
    String::from_utf8_lossy(d).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_mail_leaves_from_a_regular_ip_to_the_right_mx() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let m = message(
        "alice@a.example",
        "x@dest.example",
        "Quarterly numbers",
        "Hi, the figures are attached as discussed. Regards, Alice",
    );
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(("alice@a.example", "alice-pw")),
        "alice@a.example",
        &["x@dest.example", "y@dest.example"],
        &m,
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let id = queued_id(&r);
    let got = sc.dest.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].peer.ip().to_string(), "127.0.0.2", "regular pool IP");
    assert_eq!(got[0].ehlo, "regular.outguard.test");
    assert_eq!(got[0].mail_from, "alice@a.example");
    assert_eq!(got[0].rcpts, ["x@dest.example", "y@dest.example"]);
    let data = text(&got[0].data);
    assert!(data.contains(&format!("X-Outguard-Id: {id}")), "{data}");
    assert!(data.contains("Received: from client.test"), "{data}");
    assert!(!data.contains("X-Outguard-Verdict"));

    // The trace has every step, reachable by id and by sender.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = std::process::Command::new(common::BIN)
        .args([
            "--config",
            sc.dir().join("outguard.toml").to_str().unwrap(),
            "trace",
            "--id",
            &id,
        ])
        .output()
        .expect("trace");
    let t = String::from_utf8_lossy(&out.stdout);
    for step in ["received", "verdict", "queued", "attempt", "delivered"] {
        assert!(
            t.contains(step),
            "trace lacks {step}:\n{t}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(t.contains("127.0.0.2"), "trace names the source IP:\n{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failure_is_retried_and_permanent_failure_bounces_from_high_risk() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let alice = Some(("alice@a.example", "alice-pw"));

    sc.dest.set_script(Script::fail_first(
        1,
        SinkReply::new(451, "4.3.0 try later"),
    ));
    let r = Client::send_mail(
        sub,
        alice,
        "alice@a.example",
        &["x@dest.example"],
        &message("alice@a.example", "x@dest.example", "retry me", "body"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = sc.dest.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "delivered on the retry");
    assert!(sc.dest.transactions() >= 2);

    sc.dest.set_script(Script::default().refuse_rcpt(
        "nobody@dest.example",
        // Longer than a quoted-printable line: the DSN must carry it whole (issue 24).
        SinkReply::new(
            550,
            "5.1.1 <nobody@dest.example>: no such user here, please check the address and \
             try again, verify-marker-7781",
        ),
    ));
    let r = Client::send_mail(
        sub,
        alice,
        "alice@a.example",
        &["nobody@dest.example"],
        &message(
            "alice@a.example",
            "nobody@dest.example",
            "bounce me",
            "body",
        ),
    )
    .await;
    let id = queued_id(&r);
    let dsn = sc.home.wait_for(1, WAIT).await;
    assert_eq!(dsn.len(), 1, "a DSN reached the sender's MX");
    assert_eq!(
        dsn[0].peer.ip().to_string(),
        "127.0.0.3",
        "DSNs leave from the high-risk pool"
    );
    assert_eq!(dsn[0].mail_from, "", "DSNs have a null sender");
    assert_eq!(dsn[0].rcpts, ["alice@a.example"]);
    let d = text(&dsn[0].data);
    assert!(
        d.contains("multipart/report") && d.contains("report-type=delivery-status")
            || d.contains("report-type=\"delivery-status\""),
        "{d}"
    );
    assert!(
        d.contains("Final-Recipient: rfc822;nobody@dest.example")
            || d.contains("Final-Recipient: rfc822; nobody@dest.example"),
        "{d}"
    );
    assert!(d.contains("5.1.1"), "{d}");
    // Read raw, as RFC 3464 allows for this 7bit part (and as Python's `email` does): the
    // delivery-status part is not transfer-encoded, and unfolded it holds the whole reply.
    let part = d
        .split("Content-Type: message/delivery-status")
        .nth(1)
        .expect("delivery-status part");
    let (part_head, part_body) = part.split_once("\r\n\r\n").expect("part header");
    let part_body = part_body.split("\r\n--").next().unwrap_or_default();
    assert!(!part_head.contains("quoted-printable"), "{part_head}");
    assert!(
        !part_body.contains("=\r\n"),
        "no soft line breaks: {part_body}"
    );
    assert!(
        part_body.replace("\r\n ", " ").contains(
            "Diagnostic-Code: smtp; 550 5.1.1 <nobody@dest.example>: no such user here, please \
             check the address and try again, verify-marker-7781"
        ),
        "{part_body}"
    );
    // A second parser (ours for inbound DSNs, which decodes) reads it back too.
    let parsed = outguard_proto::dsn_report::parse(&dsn[0].data);
    let diag = parsed.recipients[0].diagnostic.clone().unwrap_or_default();
    assert!(
        diag.contains("no such user here, please check the address and try again")
            && diag.ends_with("verify-marker-7781"),
        "{diag:?}\n{d}"
    );
    let _ = id;

    // Null MX: a permanent failure without any connection.
    let r = Client::send_mail(
        sub,
        alice,
        "alice@a.example",
        &["x@nullmx.example"],
        &message("alice@a.example", "x@nullmx.example", "null mx", "body"),
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let dsn = sc.home.wait_for(2, WAIT).await;
    assert_eq!(dsn.len(), 2, "null MX bounced");
    assert!(text(&dsn[1].data).contains("x@nullmx.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_250_loses_nothing_and_delivers_once() {
    let sc = scene("").await;
    sc.provision().await;
    let mut relay = RelayProc::start(sc.dir());
    // The destination defers everything while the relay is killed.
    sc.dest.set_script(Script::fail_first(
        1_000_000,
        SinkReply::new(421, "4.4.5 busy"),
    ));
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = message(
            "alice@a.example",
            "x@dest.example",
            &format!("durable {i}"),
            "body",
        );
        let r = Client::send_mail(
            relay.addr("connector"),
            None,
            "alice@a.example",
            &["x@dest.example"],
            &m,
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
        ids.push(queued_id(&r));
    }
    relay.kill9();
    sc.dest.set_script(Script::default());
    let _relay = RelayProc::start(sc.dir());
    let got = sc.dest.wait_for(5, WAIT).await;
    assert_eq!(
        got.len(),
        5,
        "every acknowledged message arrives after the restart"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = sc.dest.messages();
    assert_eq!(got.len(), 5, "no duplicates");
    for id in ids {
        assert!(
            got.iter()
                .any(|m| text(&m.data).contains(&format!("X-Outguard-Id: {id}"))),
            "{id} missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_client_over_starttls_with_auth_login() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let port = relay.addr("submission").port();
    let script = format!(
        r#"
import smtplib, ssl
s = smtplib.SMTP("127.0.0.1", {port}, timeout=20)
s.ehlo("py.test")
s.starttls(context=ssl._create_unverified_context())
s.ehlo("py.test")
assert "auth" in s.esmtp_features, s.esmtp_features
s.login("bob@a.example", "bob-pw")
s.sendmail("bob@a.example", ["z@dest.example"], "From: bob@a.example\r\nTo: z@dest.example\r\nSubject: from python\r\n\r\n.leading dot\r\nbye\r\n")
s.quit()
print("sent")
"#
    );
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "smtplib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sc.dest.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let d = text(&got[0].data);
    assert!(d.contains("with ESMTPSA"), "{d}");
    assert!(
        d.contains("\r\n.leading dot\r\n"),
        "dot-stuffing round-trips: {d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_transaction_in_flight() {
    let sc = scene("").await;
    sc.provision().await;
    let mut relay = RelayProc::start(sc.dir());
    let (mut c, _) = Client::connect(relay.addr("connector")).await;
    c.cmd("EHLO c.test").await;
    assert!(
        c.cmd("MAIL FROM:<alice@a.example>")
            .await
            .starts_with("250")
    );
    assert!(c.cmd("RCPT TO:<x@dest.example>").await.starts_with("250"));
    // A second client in a transaction, that will end politely with QUIT (issue 24).
    let (mut c2, _) = Client::connect(relay.addr("connector")).await;
    c2.cmd("EHLO c2.test").await;
    assert!(c2.cmd("MAIL FROM:<bob@a.example>").await.starts_with("250"));
    assert!(c2.cmd("RCPT TO:<y@dest.example>").await.starts_with("250"));
    let pid = relay.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A new session is told to come back later.
    let (_, greet) = Client::connect(relay.addr("connector")).await;
    assert_eq!(greet, "421 4.3.2 Service shutting down, try again later");
    // The one in flight finishes and is queued.
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send_raw(message("alice@a.example", "x@dest.example", "last", "b").as_bytes())
        .await;
    assert!(c.cmd(".").await.starts_with("250 2.0.0 Ok: queued as"));
    assert_eq!(
        c.cmd("NOOP").await,
        "421 4.3.2 Service shutting down, try again later"
    );
    assert!(c2.cmd("DATA").await.starts_with("354"));
    c2.send_raw(message("bob@a.example", "y@dest.example", "quit", "b").as_bytes())
        .await;
    assert!(c2.cmd(".").await.starts_with("250 2.0.0 Ok: queued as"));
    assert_eq!(c2.cmd("QUIT").await, "221 2.0.0 Bye");
    let status = relay.child.wait().expect("wait");
    assert!(
        status.success(),
        "clean exit: {status:?}\n{}",
        relay.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_and_senders_without_dns_leave_from_the_high_risk_pool() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let engine = outguard_spam::Engine::builtin();
    let (_, spam_at) = engine.thresholds();
    // Corpus TEST-split spam, re-addressed to an owned sender, that the shipped model calls spam
    // with a margin (re-addressing changes a few header tokens).
    let mut sent = 0;
    for f in common::corpus_files("spam") {
        let m = common::readdress(
            &std::fs::read(&f).expect("read"),
            "bob@a.example",
            "x@dest.example",
        );
        let v = engine.scan(m.as_bytes(), &outguard_spam::ScanContext::default());
        if v.score < spam_at + 2.0 {
            continue;
        }
        let r = Client::send_mail(
            relay.addr("submission"),
            Some(("bob@a.example", "bob-pw")),
            "bob@a.example",
            &["x@dest.example"],
            &m,
        )
        .await;
        assert!(r.starts_with("250"), "{}: {r}", f.display());
        sent += 1;
        if sent == 3 {
            break;
        }
    }
    assert_eq!(sent, 3, "the shipped model finds spam in the TEST split");
    let got = sc.dest.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    for m in &got {
        assert_eq!(
            m.peer.ip().to_string(),
            "127.0.0.3",
            "spam leaves from high-risk"
        );
        assert_eq!(m.ehlo, "highrisk.outguard.test");
        // The verdict goes only to the tenant's own recipients by default (issue 21;
        // tests/outgoing_headers.rs): dest.example is external.
        let d = text(&m.data);
        assert!(!d.contains("X-Outguard-Verdict"), "{d}");
    }

    // ghost.example is an accepted domain with neither A nor MX in DNS.
    let m = message(
        "ghost@ghost.example",
        "y@dest.example",
        "Lunch on Friday",
        "Shall we meet at noon? Cheers",
    );
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(("ghost@ghost.example", "ghost-pw")),
        "ghost@ghost.example",
        &["y@dest.example"],
        &m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = sc.dest.wait_for(4, WAIT).await;
    let last = got
        .iter()
        .find(|m| m.mail_from == "ghost@ghost.example")
        .expect("ghost mail");
    assert_eq!(last.peer.ip().to_string(), "127.0.0.3");
    assert!(
        !text(&last.data).contains("X-Outguard-Verdict"),
        "external: not told"
    );
}
