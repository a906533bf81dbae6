//! End to end, the outbound spam policy (SPEC §2.4, §3) on the real binary: the crossing RCPT
//! gets its exact code, later transactions 5.1.8, the notification email arrives in the seed's
//! format, queued mail is held, the admin lifts it; spam thresholds per account and tenant;
//! the `alert` action; exactness under concurrency; restart keeps counters and restrictions.

mod common;

use std::time::Duration;

use common::client::Client;
use common::{RelayProc, Scene, message, scene};
use outguard_harness::http::Receiver;
use outguard_harness::sink::{Reply as SinkReply, Script};

const WAIT: Duration = Duration::from_secs(30);

fn text(d: &[u8]) -> String {
    String::from_utf8_lossy(d).into_owned()
}

/// Send one message from `who` to `n` recipients in one transaction; returns each reply of the
/// RCPTs and the final reply (None when DATA was not reached).
async fn send_n(
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
    let mut any = false;
    for i in first..first + n {
        let r = c.cmd(&format!("RCPT TO:<r{i}@dest.example>")).await;
        any |= r.starts_with("250");
        replies.push(r);
    }
    if !any {
        c.cmd("QUIT").await;
        return (replies, None);
    }
    c.cmd("DATA").await;
    c.send_raw(
        message(
            who.0,
            "list@dest.example",
            "Monthly newsletter",
            "News of the month.",
        )
        .as_bytes(),
    )
    .await;
    let fin = c.cmd(".").await;
    c.cmd("QUIT").await;
    (replies, Some(fin))
}

async fn policy_scene(settings: &[&str]) -> Scene {
    let sc = scene("").await;
    sc.provision().await;
    let mut args = vec!["policy", "set", "--tenant", "a"];
    args.extend_from_slice(settings);
    sc.ok(&args);
    sc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_sender_crosses_its_hourly_limit_is_restricted_notified_held_and_lifted() {
    let sc = policy_scene(&[
        "recipient_limit_external_per_hour=5",
        "notify_recipients=admin@a.example",
    ])
    .await;
    // The destination defers, so what bob sent stays queued (and is held by the restriction).
    sc.dest.set_script(Script::fail_first(
        1_000_000,
        SinkReply::new(451, "4.7.1 later"),
    ));
    let relay = RelayProc::start(sc.dir());
    let bob = ("bob@a.example", "bob-pw");

    let (rcpts, fin) = send_n(&relay, bob, 0, 3).await;
    assert!(rcpts.iter().all(|r| r.starts_with("250")), "{rcpts:?}");
    assert!(fin.expect("data").starts_with("250"));
    let (rcpts, fin) = send_n(&relay, bob, 3, 3).await;
    assert!(
        rcpts[0].starts_with("250") && rcpts[1].starts_with("250"),
        "{rcpts:?}"
    );
    assert_eq!(
        rcpts[2], "550 5.2.2 Submission quota exceeded",
        "the 6th recipient in the hour"
    );
    assert!(
        fin.expect("the first two are still sent")
            .starts_with("250")
    );
    let (r, _) = send_n(&relay, bob, 6, 1).await;
    assert_eq!(r[0], "550 5.1.8 Access denied, bad outbound sender");
    // Alice, same tenant, is not affected.
    let (rcpts, _) = send_n(&relay, ("alice@a.example", "alice-pw"), 0, 1).await;
    assert!(rcpts[0].starts_with("250"), "{rcpts:?}");

    // The notification email, in the seed's format, through our own queue from `regular`.
    let got = sc.home.wait_for(1, WAIT).await;
    let note = got
        .iter()
        .find(|m| m.rcpts == ["admin@a.example"])
        .expect("notification");
    let d = text(&note.data);
    let parsed = mail_parser::MessageParser::new()
        .parse(&note.data)
        .expect("parse");
    assert_eq!(
        parsed.subject(),
        Some("Outbound spam notification - bob@a.example blocked from sending outbound mail"),
        "{d}"
    );
    assert!(
        d.contains("It is likely that this email account has been compromised"),
        "{d}"
    );
    assert!(d.contains("external recipients in last hour"), "{d}");
    assert_eq!(
        note.peer.ip().to_string(),
        "127.0.0.2",
        "notifications leave from regular"
    );

    // The alert, the restriction record, and bob's queued mail held.
    let alerts = sc.ok(&["alerts", "--tenant", "a", "--json"]);
    assert!(alerts.contains("user_restricted"), "{alerts}");
    let restricted = sc.ok(&["restricted", "list", "--json"]);
    assert!(restricted.contains("bob@a.example"), "{restricted}");
    // A message in the middle of a delivery attempt when the restriction lands is held when
    // that attempt ends (it is never lost to the deferral): on a loaded machine that can take a
    // moment, so poll rather than sleep a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let held = sc.ok(&["queue", "list", "--state", "held", "--json"]);
        let held: serde_json::Value = serde_json::from_str(&held).expect("json");
        let bobs = held
            .as_array()
            .expect("array")
            .iter()
            .filter(|m| m["mail_from"] == "bob@a.example")
            .count();
        if bobs == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "both of bob's messages are held: {held}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The admin lifts it; bob sends again, and the same limit does not restrict him again today.
    sc.ok(&[
        "restricted",
        "lift",
        "bob@a.example",
        "--reason",
        "password reset, malware removed",
    ]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (rcpts, fin) = send_n(&relay, bob, 10, 3).await;
    assert!(
        rcpts.iter().all(|r| r.starts_with("250")),
        "after the lift: {rcpts:?}"
    );
    assert!(fin.expect("data").starts_with("250"));
    let (r, _) = send_n(&relay, bob, 20, 1).await;
    assert!(
        r[0].starts_with("250"),
        "not re-restricted by the same limit today: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_action_keeps_mail_flowing() {
    let sc = policy_scene(&[
        "recipient_limit_external_per_hour=2",
        "action_when_threshold_reached=alert",
        "notify_recipients=admin@a.example",
    ])
    .await;
    let relay = RelayProc::start(sc.dir());
    let (rcpts, fin) = send_n(&relay, ("bob@a.example", "bob-pw"), 0, 4).await;
    assert!(rcpts.iter().all(|r| r.starts_with("250")), "{rcpts:?}");
    assert!(fin.expect("data").starts_with("250"));
    let got = sc.dest.wait_for(1, WAIT).await;
    assert_eq!(got[0].rcpts.len(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alerts = sc.ok(&["alerts", "--tenant", "a", "--json"]);
    assert!(alerts.contains("sending_limit_exceeded"), "{alerts}");
    assert!(
        !sc.ok(&["restricted", "list", "--json"])
            .contains("bob@a.example")
    );
}

/// Corpus TEST-split spam re-addressed to `from`, with a margin over the spam threshold.
fn corpus_spam(from: &str, n: usize) -> Vec<String> {
    let engine = outguard_spam::Engine::builtin();
    let (_, spam_at) = engine.thresholds();
    common::corpus_files("spam")
        .into_iter()
        .map(|f| common::readdress(&std::fs::read(f).expect("read"), from, "x@dest.example"))
        .filter(|m| {
            engine
                .scan(m.as_bytes(), &outguard_spam::ScanContext::default())
                .score
                >= spam_at + 2.0
        })
        .take(n)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compromised_account_is_restricted_by_its_spam_and_the_tenant_by_its_aggregate() {
    let sc = policy_scene(&[
        "spam_messages_per_hour=2",
        "tenant_spam_messages_per_hour=4",
        "notify_recipients=admin@a.example",
    ])
    .await;
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let alice = ("alice@a.example", "alice-pw");
    let bob = ("bob@a.example", "bob-pw");
    let mut accepted = 0;
    for m in corpus_spam("bob@a.example", 4) {
        let r = Client::send_mail(sub, Some(bob), bob.0, &["x@dest.example"], &m).await;
        if r.starts_with("250") {
            accepted += 1;
        } else {
            assert_eq!(r, "550 5.1.8 Access denied, bad outbound sender");
        }
    }
    assert_eq!(
        accepted, 2,
        "the second spam reaches 2/hour; later ones are refused at MAIL"
    );
    let got = sc.dest.wait_for(2, WAIT).await;
    assert!(
        got.iter().all(|m| m.peer.ip().to_string() == "127.0.0.3"),
        "accepted spam left from high-risk"
    );
    assert!(
        sc.ok(&["restricted", "list", "--json"])
            .contains("bob@a.example")
    );

    // Alice's spam brings the tenant to 4/hour: every account of tenant a is refused with
    // 5.7.705; tenant b is unaffected.
    for m in corpus_spam("alice@a.example", 2) {
        let r = Client::send_mail(sub, Some(alice), alice.0, &["x@dest.example"], &m).await;
        assert!(r.starts_with("250"), "{r}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (Alice's second spam also reached her own 2/hour; ghost, never restricted itself, shows
    // the tenant's block.)
    let ghost = ("ghost@ghost.example", "ghost-pw");
    let r = Client::send_mail(
        sub,
        Some(ghost),
        ghost.0,
        &["x@dest.example"],
        &message(ghost.0, "x@dest.example", "hi", "hello"),
    )
    .await;
    assert_eq!(
        r,
        "550 5.7.705 Access denied, tenant has exceeded threshold"
    );
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "alice@a.example",
        &["x@dest.example"],
        &message(alice.0, "x@dest.example", "hi", "hello"),
    )
    .await;
    assert_eq!(
        r,
        "550 5.7.705 Access denied, tenant has exceeded threshold"
    );
    let carol = ("carol@b.example", "carol-pw");
    let r = Client::send_mail(
        sub,
        Some(carol),
        carol.0,
        &["x@dest.example"],
        &message(carol.0, "x@dest.example", "hi", "hello"),
    )
    .await;
    assert!(r.starts_with("250"), "tenant b is unaffected: {r}");
    assert!(sc.ok(&["alerts", "--json"]).contains("tenant_restricted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sessions_never_exceed_the_limit_and_restart_keeps_the_windows() {
    let sc = policy_scene(&[
        "recipient_limit_external_per_hour=100",
        "action_when_threshold_reached=block_user_for_today",
    ])
    .await;
    let mut relay = RelayProc::start(sc.dir());
    let mut tasks = Vec::new();
    for s in 0..50 {
        let addr = relay.addr("submission");
        tasks.push(tokio::spawn(async move {
            // From five client addresses: 10 sessions each, under the per-address cap of 20.
            let source = std::net::IpAddr::from([127, 0, 0, 100 + (s % 5) as u8]);
            let (mut c, _) = Client::connect_from(addr, source).await;
            c.cmd("EHLO c.test").await;
            c.auth_plain("bob@a.example", "bob-pw").await;
            if !c.cmd("MAIL FROM:<bob@a.example>").await.starts_with("250") {
                return 0;
            }
            let mut ok = 0;
            for i in 0..4 {
                if c.cmd(&format!("RCPT TO:<s{s}r{i}@dest.example>"))
                    .await
                    .starts_with("250")
                {
                    ok += 1;
                }
            }
            if ok > 0 {
                c.cmd("DATA").await;
                c.send_raw(message("bob@a.example", "x@dest.example", "c", "b").as_bytes())
                    .await;
                if !c.cmd(".").await.starts_with("250") {
                    return 0;
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    assert_eq!(
        total, 100,
        "exactly the limit is admitted across 50 concurrent sessions (200 tried)"
    );
    // Restart: the restriction and the window survive.
    relay.terminate();
    let relay = RelayProc::start(sc.dir());
    let (r, _) = send_n(&relay, ("bob@a.example", "bob-pw"), 900, 1).await;
    assert_eq!(
        r[0], "550 5.1.8 Access denied, bad outbound sender",
        "restriction kept across restart"
    );
    sc.ok(&["restricted", "lift", "bob@a.example", "--reason", "checked"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Lifted: admitted again (the limit that restricted him only alerts for the rest of the day).
    let (r, _) = send_n(&relay, ("bob@a.example", "bob-pw"), 901, 1).await;
    assert!(r[0].starts_with("250"), "{r:?}");
}

/// SPEC §9 (issue 16 case 5): every BCC copy counts against the sender's recipient windows like
/// any other recipient, and a copy whose window is full is not sent (the trace says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcc_copies_count_against_the_senders_windows() {
    let sc = policy_scene(&[
        "recipient_limit_per_day=3",
        "bcc_suspicious_outbound_mail=true",
        "bcc_recipients=sec1@a.example,sec2@a.example",
    ])
    .await;
    // Alice's own policy leaves room for her recipient and one copy only.
    sc.ok(&[
        "policy",
        "add",
        "--tenant",
        "a",
        "tight",
        "--priority",
        "1",
        "--sender",
        "alice@a.example",
        "recipient_limit_per_day=2",
    ]);
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let bob = ("bob@a.example", "bob-pw");
    let spam = corpus_spam(bob.0, 1);
    let r = Client::send_mail(sub, Some(bob), bob.0, &["x@dest.example"], &spam[0]).await;
    assert!(r.starts_with("250"), "{r}");
    // 1 recipient + 2 copies = bob's 3 a day: his next recipient is refused.
    let hello = message(bob.0, "y@dest.example", "hi", "hello");
    let r = Client::send_mail(sub, Some(bob), bob.0, &["y@dest.example"], &hello).await;
    assert!(r.starts_with("550"), "the copies used bob's window: {r}");
    let got = sc.home.wait_for(1, WAIT).await;
    let copies: Vec<String> = got.iter().flat_map(|m| m.rcpts.clone()).collect();
    assert!(
        copies.contains(&"sec1@a.example".to_string())
            && copies.contains(&"sec2@a.example".to_string()),
        "{copies:?}"
    );

    let alice = ("alice@a.example", "alice-pw");
    let spam = corpus_spam(alice.0, 1);
    let r = Client::send_mail(sub, Some(alice), alice.0, &["x@dest.example"], &spam[0]).await;
    assert!(r.starts_with("250"), "{r}");
    let id = common::client::queued_id(&r);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // The trace writer batches: until it flushes, `trace` answers "no message".
        let (_, trace, _) = sc.cli(&["trace", "--id", &id]);
        if trace.contains("BCC copy to sec2@a.example not sent") {
            assert!(trace.contains("BCC copy to sec1@a.example:"), "{trace}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{trace}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let to_alice_copies: Vec<Vec<String>> = sc
        .home
        .messages()
        .iter()
        .filter(|m| text(&m.data).contains("alice@a.example"))
        .map(|m| m.rcpts.clone())
        .collect();
    assert_eq!(to_alice_copies, vec![vec!["sec1@a.example".to_string()]]);
}

/// Open a session of bob with a transaction whose first `n` recipients (numbered from `first`)
/// are admitted.
async fn bob_with_recipients(relay: &RelayProc, first: usize, n: usize) -> Client {
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    c.cmd("EHLO c.test").await;
    assert!(
        c.auth_plain("bob@a.example", "bob-pw")
            .await
            .starts_with("235")
    );
    assert!(c.cmd("MAIL FROM:<bob@a.example>").await.starts_with("250"));
    for i in first..first + n {
        let r = c.cmd(&format!("RCPT TO:<r{i}@dest.example>")).await;
        assert!(r.starts_with("250"), "{r}");
    }
    c
}

/// Three more recipients on an open transaction: their replies.
async fn three_more(c: &mut Client, first: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in first..first + 3 {
        out.push(c.cmd(&format!("RCPT TO:<r{i}@dest.example>")).await);
    }
    out
}

/// SPEC §3 (issue 15): two sessions of bob cross the same hourly limit at the same moment. Each
/// crossing RCPT is refused at once and the restriction holds for the next command; tenant a is
/// told once — one `user_restricted` alert, one notification email, one webhook delivery —
/// however many sessions raised it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_crossing_one_limit_at_once_raise_one_alert_one_email_one_webhook() {
    let mut hook = Receiver::start("127.0.0.1:0".parse().expect("addr"), None)
        .await
        .expect("webhook receiver");
    let sc = scene(&format!(
        "\n[[webhooks.hooks]]\nurl = \"http://{}/hook\"\nsecret = \"outbox-secret-0001\"\nkinds = [\"user_restricted\"]\n",
        hook.addr
    ))
    .await;
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=4",
        "notify_recipients=admin@a.example",
    ]);
    let relay = RelayProc::start(sc.dir());
    // Two sessions fill the window between them, then both cross it together.
    let mut one = bob_with_recipients(&relay, 0, 2).await;
    let mut two = bob_with_recipients(&relay, 2, 2).await;
    let (r1, r2) = tokio::join!(three_more(&mut one, 10), three_more(&mut two, 20));
    for r in r1.iter().chain(&r2) {
        assert!(
            r == "550 5.2.2 Submission quota exceeded"
                || r == "550 5.1.8 Access denied, bad outbound sender",
            "{r1:?} {r2:?}"
        );
    }
    assert!(
        r1.iter().chain(&r2).any(|r| r.contains("5.2.2")),
        "the limit was crossed: {r1:?} {r2:?}"
    );
    one.cmd("QUIT").await;
    two.cmd("QUIT").await;
    // In force at once for the next transaction.
    let (r, _) = send_n(&relay, ("bob@a.example", "bob-pw"), 30, 1).await;
    assert_eq!(r[0], "550 5.1.8 Access denied, bad outbound sender");

    // One webhook delivery, one email; then nothing more arrives.
    let first = tokio::time::timeout(WAIT, hook.requests.recv())
        .await
        .expect("a webhook delivery in time")
        .expect("receiver open");
    let body: serde_json::Value = serde_json::from_slice(&first.body).expect("json");
    assert_eq!(body["kind"], "user_restricted", "{body}");
    let got = sc.home.wait_for(1, WAIT).await;
    assert!(got.iter().any(|m| m.rcpts == ["admin@a.example"]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        hook.requests.try_recv().is_err(),
        "a second webhook delivery"
    );
    let notes = sc
        .home
        .messages()
        .into_iter()
        .filter(|m| m.rcpts == ["admin@a.example"])
        .count();
    assert_eq!(notes, 1, "notification emails");
    let alerts: serde_json::Value =
        serde_json::from_str(&sc.ok(&["alerts", "--tenant", "a", "--json"])).expect("json");
    let restricted_alerts = alerts
        .as_array()
        .expect("array")
        .iter()
        .filter(|a| a["kind"] == "user_restricted")
        .count();
    assert_eq!(restricted_alerts, 1, "{alerts}");
    let list: serde_json::Value =
        serde_json::from_str(&sc.ok(&["restricted", "list", "--json"])).expect("json");
    assert_eq!(list.as_array().expect("array").len(), 1, "{list}");
}
