//! End to end, the sender signals of issue 19 on the real binary, with the harness's DNS server
//! and sinks: a compromised account's spam never leaves from a regular IP once one of its
//! messages was called spam (`ACCOUNT_RECENT_SPAM`) and it is restricted within 10 spam
//! messages; near-identical mail from accounts of three tenants makes the clean copy suspicious
//! (`CAMPAIGN_MATCH`) although its own content scores clean, and the operator is alerted, while
//! one tenant's copies of another tenant's newsletter cannot make it suspicious (SPEC §9); an
//! admin clears a reputation through the CLI.

mod common;

use std::time::Duration;

use common::client::Client;
use common::{RelayProc, Scene, message, scene};

const REGULAR_IP: &str = "127.0.0.2";
const HIGH_RISK_IP: &str = "127.0.0.3";

/// What an everyday account writes (the engine calls these clean).
const CLEAN: [(&str, &str); 3] = [
    (
        "Notes from Tuesday",
        "Hi Sam,\r\n\r\nThanks for the notes from Tuesday. I went through the draft and added \
         comments on the budget section; could you look at the travel line before Friday? \
         Otherwise it looks ready to send to the board.\r\n\r\nBest,\r\nAlex",
    ),
    (
        "Quarterly review",
        "Hello team,\r\n\r\nThe quarterly review moves to Thursday at 2pm in the large meeting \
         room. Please bring the updated project timelines and a short summary of open risks. \
         The agenda is in the shared folder.\r\n\r\nThanks,\r\nMaria",
    ),
    (
        "Second batch",
        "Hi Jordan,\r\n\r\nAs discussed on the call, we can deliver the second batch of parts \
         on the 14th. The revised quote reflects the smaller quantity. Let me know if your \
         purchasing team needs anything else from us.\r\n\r\nKind regards,\r\nChris",
    ),
];

async fn send(relay: &RelayProc, who: (&str, &str), to: &str, subject: &str, body: &str) -> String {
    let data = message(who.0, to, subject, body);
    Client::send_mail(relay.addr("submission"), Some(who), who.0, &[to], &data).await
}

fn queued_id(reply: &str) -> Option<String> {
    reply
        .strip_prefix("250 ")
        .and_then(|r| r.rsplit(' ').next())
        .map(str::to_string)
}

/// The message's trace record (`outguard trace --id ID --json`), once the writer has flushed.
async fn trace(sc: &Scene, id: &str) -> serde_json::Value {
    for _ in 0..100 {
        let (code, out, _) = sc.cli(&["trace", "--id", id, "--json"]);
        // The trace writer batches: wait for the record and its verdict event.
        if code == 0
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&out)
            && v["message"].is_object()
            && v["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "verdict"))
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no trace for {id}");
}

/// Phishing of today's kinds. The builtin engine calls the first and third spam and scores the
/// others clean on their own: what keeps those off the regular IPs is the sender's reputation,
/// and what calls most of them suspicious is the burst to first-time domains.
const PHISHING: [(&str, &str); 5] = [
    (
        "Action required: your mailbox password expires today",
        "Dear user,\r\n\r\nThe password for your Microsoft 365 mailbox expires today. To keep \
         your current password and avoid losing access to your email, confirm your account \
         now:\r\n\r\nhttps://m365-account-keep.example/verify?user=you\r\n\r\nIf you do not \
         confirm within 24 hours your mailbox will be suspended and incoming messages will be \
         deleted.\r\n\r\nMicrosoft 365 Security Team",
    ),
    (
        "DHL: your parcel is on hold - customs fee unpaid",
        "Hello,\r\n\r\nYour DHL parcel could not be delivered because an import fee of 1.99 EUR \
         has not been paid. Pay the fee with your card to release the shipment:\r\n\r\n\
         https://dhl-parcel-release.example/pay\r\n\r\nIf the fee is not paid within 48 hours \
         the parcel will be returned to the sender.\r\n\r\nDHL Express",
    ),
    (
        "Unusual sign-in activity on your bank account",
        "Dear client,\r\n\r\nWe detected an unusual sign-in to your online banking from a new \
         device. For your security your account has been temporarily limited. Verify your \
         identity and confirm your card details to restore full access:\r\n\r\n\
         https://secure-bank-verify.example/login\r\n\r\nFailure to verify will result in \
         permanent suspension.\r\n\r\nOnline Banking Security",
    ),
    ("You have received a document to review and sign", DOC_PHISH),
    (
        "Netflix: your payment was declined",
        "Hi,\r\n\r\nWe were unable to process your last payment, so your membership is on hold. \
         Update your payment information within 24 hours to keep watching:\r\n\r\n\
         https://netflix-billing-update.example/account\r\n\r\nThe Netflix Team",
    ),
];

const DOC_PHISH: &str = "DocuSign\r\n\r\nA document has been shared with you: \
    Payment_Invoice_Remittance.pdf\r\n\r\nREVIEW DOCUMENT: https://docs-sign-view.example/d/8812\
    \r\n\r\nPlease sign in with your email credentials to view and sign the document. The link \
    expires in 12 hours.\r\n\r\nPowered by DocuSign";

fn is_phishing(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    PHISHING.iter().any(|(s, _)| text.contains(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compromised_account_is_restricted_within_ten_spam_and_no_spam_leaves_from_regular() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let alice = ("alice@a.example", "alice-pw");
    for i in 0..5 {
        let (subject, body) = CLEAN[i % CLEAN.len()];
        let r = send(
            &relay,
            alice,
            &format!("colleague{i}@dest.example"),
            subject,
            body,
        )
        .await;
        assert!(r.starts_with("250"), "clean #{i}: {r}");
    }
    // Then the account is taken over: phishing to five recipients a message, each at a domain
    // the account never wrote to (one at dest.example, whose MX is the sink).
    let mut accepted = Vec::new();
    let mut refused_at = None;
    for k in 0..20 {
        let (subject, body) = PHISHING[k % PHISHING.len()];
        let to: Vec<String> = std::iter::once(format!("victim{k}@dest.example"))
            .chain((0..4).map(|j| format!("v{j}@target{k}-{j}.example")))
            .collect();
        let rcpts: Vec<&str> = to.iter().map(String::as_str).collect();
        let data = message(alice.0, &to[0], subject, body);
        let r = Client::send_mail(
            relay.addr("submission"),
            Some(alice),
            alice.0,
            &rcpts,
            &data,
        )
        .await;
        if r.starts_with("250") {
            accepted.push(queued_id(&r).expect("queued id"));
        } else {
            assert!(r.starts_with("550 5.1.8"), "phishing #{k}: {r}");
            refused_at = Some(k);
            break;
        }
    }
    let Some(refused_at) = refused_at else {
        let mut seen = Vec::new();
        for id in &accepted {
            let t = trace(&sc, id).await;
            let v = t["events"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["kind"] == "verdict"))
                .map(|e| e["detail"].to_string());
            seen.push(format!("{} {:?}", t["message"]["class"], v));
        }
        panic!("the account was never restricted: {seen:#?}");
    };
    assert!(
        refused_at <= 10,
        "restricted only after {} spam messages",
        accepted.len()
    );
    // Every accepted phishing message was spooled for the high-risk pool.
    for id in &accepted {
        let t = trace(&sc, id).await;
        assert_eq!(t["message"]["pool"], "high-risk", "{id}: {t:#}");
    }
    // And what reached the destination left from the high-risk IP: wait for the clean mail and
    // the phishing sent before the restriction (the rest is held).
    let got = sc.dest.wait_for(6, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = if got.len() < sc.dest.messages().len() {
        sc.dest.messages()
    } else {
        got
    };
    let phish: Vec<_> = got.iter().filter(|m| is_phishing(&m.data)).collect();
    assert!(!phish.is_empty(), "no phishing delivered at all");
    for m in &phish {
        assert_eq!(
            m.peer.ip().to_string(),
            HIGH_RISK_IP,
            "spam left from a regular IP"
        );
    }
    let clean_from_regular = got
        .iter()
        .filter(|m| !is_phishing(&m.data) && m.peer.ip().to_string() == REGULAR_IP)
        .count();
    assert_eq!(clean_from_regular, 5, "the clean mail before the takeover");
    // The trace explains the regular-looking ones.
    let mut reasons = String::new();
    for id in &accepted {
        reasons.push_str(&trace(&sc, id).await.to_string());
    }
    assert!(reasons.contains("ACCOUNT_RECENT_SPAM"), "{reasons}");
    eprintln!(
        "restricted at phishing message {} ({} accepted, all high-risk; {} delivered from {HIGH_RISK_IP})",
        refused_at + 1,
        accepted.len(),
        phish.len()
    );
}

/// A third tenant, c (c.example: dave), beside the scene's two; before the relay starts.
async fn add_tenant_c(sc: &Scene) {
    let url = format!(
        "sqlite://{}?mode=rwc",
        sc.dir().join("data/outguard.db").display()
    );
    let store = outguard_store::Store::open(&url).await.expect("store");
    store.add_tenant("c", 1).await.expect("tenant");
    store.add_domain("c", "c.example").await.expect("domain");
    store
        .add_account("c", "dave@c.example", Some("dave-pw"), 1)
        .await
        .expect("account");
    store.close().await;
}

/// A wave across the service: copies from accounts of three tenants, called spam in two of
/// them; the third tenant's copy is called suspicious by `CAMPAIGN_MATCH` although its own
/// content is clean (another tenant's evidence counts once two other tenants vouch for it,
/// SPEC §9). A copy whose tenant has only one other tenant's evidence stays clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_across_three_tenants_makes_the_clean_copy_suspicious() {
    let sc = scene("").await;
    sc.provision().await;
    add_tenant_c(&sc).await;
    let relay = RelayProc::start(sc.dir());
    // One body. The loud subject makes the engine call a copy spam (suspicious or spam, by a
    // clear margin); the bland one leaves the content score clean.
    let loud = "FREE $$$ WINNER!!! CLAIM YOUR CASH PRIZE NOW!!! 100% GUARANTEED";
    let bland = "Document shared with you";
    let senders = [
        (("alice@a.example", "alice-pw"), loud),
        (("bob@a.example", "bob-pw"), bland),
        (("carol@b.example", "carol-pw"), loud),
        (("dave@c.example", "dave-pw"), bland),
    ];
    let mut ids = Vec::new();
    for (i, (who, subject)) in senders.iter().enumerate() {
        let r = send(
            &relay,
            *who,
            &format!("r{i}@dest.example"),
            subject,
            DOC_PHISH,
        )
        .await;
        ids.push(queued_id(&r).unwrap_or_else(|| panic!("{}: {r}", who.0)));
    }
    for i in [0, 2] {
        let loud = trace(&sc, &ids[i]).await;
        assert_ne!(loud["message"]["class"], "clean", "{loud:#}");
    }
    let second = trace(&sc, &ids[1]).await;
    assert_eq!(
        second["message"]["class"], "clean",
        "the content alone is clean (pick another text if the model changed): {second:#}"
    );
    let last = trace(&sc, &ids[3]).await;
    assert_eq!(last["message"]["class"], "suspicious", "{last:#}");
    assert_eq!(last["message"]["pool"], "high-risk");
    let verdict = last["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "verdict")
        .expect("verdict event");
    let campaign = verdict["data"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tag"] == "CAMPAIGN_MATCH")
        .unwrap_or_else(|| panic!("no CAMPAIGN_MATCH: {verdict:#}"));
    assert!(
        campaign["detail"]
            .as_str()
            .unwrap()
            .contains("4 senders (of this tenant and 2 others)"),
        "{campaign}"
    );
    // The operator is alerted once, at 3 senders (the service's view, any tenants).
    let mut alerts = serde_json::Value::Null;
    for _ in 0..50 {
        let out = sc.ok(&["alerts", "--kind", "campaign_detected", "--json"]);
        alerts = serde_json::from_str(&out).unwrap();
        if alerts.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = alerts.as_array().expect("alerts");
    assert_eq!(list.len(), 1, "{alerts:#}");
    assert!(
        list[0]["summary"]
            .as_str()
            .unwrap()
            .contains("3 senders of 2 tenant(s)"),
        "{alerts:#}"
    );
    // At the destination the last copy came from the high-risk IP, the clean second from
    // regular.
    let got = sc.dest.wait_for(4, Duration::from_secs(30)).await;
    let by_rcpt = |r: &str| {
        got.iter()
            .find(|m| m.rcpts.iter().any(|x| x == r))
            .map(|m| m.peer.ip().to_string())
    };
    assert_eq!(by_rcpt("r1@dest.example").as_deref(), Some(REGULAR_IP));
    assert_eq!(by_rcpt("r3@dest.example").as_deref(), Some(HIGH_RISK_IP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_clears_a_reputation_and_only_its_own_tenants() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let alice = ("alice@a.example", "alice-pw");
    let (spam_subject, spam_body) = PHISHING[0];
    let r = send(&relay, alice, "x@dest.example", spam_subject, spam_body).await;
    assert!(r.starts_with("250"), "{r}");
    let (subject, body) = CLEAN[0];
    let r = send(&relay, alice, "y@dest.example", subject, body).await;
    let after_spam = trace(&sc, &queued_id(&r).unwrap()).await;
    assert_eq!(after_spam["message"]["class"], "clean");
    assert_eq!(after_spam["message"]["pool"], "high-risk", "{after_spam:#}");
    assert!(after_spam.to_string().contains("ACCOUNT_RECENT_SPAM"));

    let url = format!("http://{}", relay.addr("http"));
    let op = relay.token.clone().expect("operator token");
    let tb = sc.ok(&[
        "--server",
        &url,
        "--token",
        &op,
        "admin",
        "token",
        "create",
        "--role",
        "tenant_admin",
        "--tenant",
        "b",
    ]);
    let tb = tb.trim();
    // Another tenant's admin: not found, and nothing changes.
    let (code, _, err) = sc.cli(&[
        "--server",
        &url,
        "--token",
        tb,
        "restricted",
        "clear-reputation",
        "alice@a.example",
        "--reason",
        "mine now",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("no account or connector"), "{err}");
    let r = send(&relay, alice, "z@dest.example", subject, body).await;
    let still = trace(&sc, &queued_id(&r).unwrap()).await;
    assert_eq!(still["message"]["pool"], "high-risk");
    // The operator clears it: the next clean message leaves by its own verdict.
    let out = sc.ok(&[
        "--server",
        &url,
        "--token",
        &op,
        "restricted",
        "clear-reputation",
        "alice@a.example",
        "--reason",
        "password reset, mailbox cleaned",
    ]);
    assert!(out.contains("reputation cleared"), "{out}");
    let r = send(&relay, alice, "w@dest.example", subject, body).await;
    let cleared = trace(&sc, &queued_id(&r).unwrap()).await;
    assert_eq!(cleared["message"]["pool"], "regular", "{cleared:#}");
}

/// A shop's newsletter (the engine calls it clean as the shop sends it).
const NEWSLETTER_SUBJECT: &str = "Holiday giveaway: win a year of coffee";
const NEWSLETTER: &str = "Holiday giveaway!\r\n\r\nEvery order placed before December 20 enters \
    our free prize draw: win a year of free coffee, a grinder or one of 100 gift cards. Winners \
    are drawn on December 21 and notified by email.\r\n\r\nEnter now and shop the collection: \
    https://northwind-giveaway.example/enter\r\n\r\nNorthwind Coffee\r\nUnsubscribe: \
    https://northwind-giveaway.example/unsubscribe";

/// The newsletter's body under headers that make the engine call it spam (a brand in the display
/// name, a freemail Reply-To, a shouting subject): the body, hence the fingerprint, is the same.
fn spammy_copy(from: &str, to: &str) -> String {
    format!(
        "From: \"PayPal Prize Center\" <{from}>\r\nReply-To: claims.office@gmail.com\r\nTo: {to}\r\n\
         Subject: FREE $$$ WINNER!!! CLAIM YOUR CASH PRIZE NOW!!! 100% GUARANTEED\r\n\
         Message-ID: <spammy-{to}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n{NEWSLETTER}\r\n"
    )
}

fn verdict_reasons(t: &serde_json::Value) -> Vec<String> {
    t["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "verdict"))
        .and_then(|e| e["data"]["reasons"].as_array())
        .map(|r| {
            r.iter()
                .filter_map(|r| r["tag"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// SPEC §9, one tenant cannot harm another: a tenant with three accounts sends copies of
/// another tenant's newsletter, one of them dressed as spam. Its own third copy is caught
/// (a wave inside one tenant), but the victim's newsletter stays clean, leaves from `regular`
/// and adds nothing to the victim's spam counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_copies_do_not_make_a_newsletter_suspicious() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    // The attacker: tenant a's three accounts, the first copy called spam.
    let alice = ("alice@a.example", "alice-pw");
    let data = spammy_copy(alice.0, "a0@dest.example");
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(alice),
        alice.0,
        &["a0@dest.example"],
        &data,
    )
    .await;
    let loud = trace(&sc, &queued_id(&r).unwrap_or_else(|| panic!("{r}"))).await;
    assert_ne!(
        loud["message"]["class"], "clean",
        "the dressed-up copy must be called spam (pick louder headers if the model changed): {loud:#}"
    );
    let mut attacker = Vec::new();
    for (i, who) in [
        ("bob@a.example", "bob-pw"),
        ("ghost@ghost.example", "ghost-pw"),
    ]
    .into_iter()
    .enumerate()
    {
        let to = format!("a{}@dest.example", i + 1);
        let r = send(&relay, who, &to, NEWSLETTER_SUBJECT, NEWSLETTER).await;
        attacker.push(trace(&sc, &queued_id(&r).unwrap_or_else(|| panic!("{r}"))).await);
    }
    assert!(
        !verdict_reasons(&attacker[0]).contains(&"CAMPAIGN_MATCH".to_string()),
        "two senders are no campaign yet: {:#}",
        attacker[0]
    );
    // Inside one tenant the wave is still a campaign.
    assert_eq!(
        attacker[1]["message"]["class"], "suspicious",
        "{:#}",
        attacker[1]
    );
    assert!(
        verdict_reasons(&attacker[1]).contains(&"CAMPAIGN_MATCH".to_string()),
        "{:#}",
        attacker[1]
    );

    // The victim, tenant b, sends its newsletter.
    let carol = ("carol@b.example", "carol-pw");
    let r = send(
        &relay,
        carol,
        "subscriber@dest.example",
        NEWSLETTER_SUBJECT,
        NEWSLETTER,
    )
    .await;
    let victim = trace(&sc, &queued_id(&r).unwrap_or_else(|| panic!("{r}"))).await;
    assert_eq!(victim["message"]["class"], "clean", "{victim:#}");
    assert_eq!(victim["message"]["pool"], "regular", "{victim:#}");
    let text = victim.to_string();
    assert!(!text.contains("CAMPAIGN_MATCH"), "{victim:#}");
    assert!(
        !text.contains("spam messages"),
        "counted as spam: {victim:#}"
    );

    // Its spam counts did not grow: the next message it gets called spam counts 1, for the
    // account and for the tenant.
    let (subject, body) = PHISHING[0];
    let r = send(&relay, carol, "x@dest.example", subject, body).await;
    let spam = trace(&sc, &queued_id(&r).unwrap_or_else(|| panic!("{r}"))).await;
    assert_ne!(spam["message"]["class"], "clean", "{spam:#}");
    let text = spam.to_string();
    assert!(
        text.contains("spam messages in last hour: 1 "),
        "account count: {spam:#}"
    );
    assert!(
        text.contains("spam messages from the organisation in last hour: 1 "),
        "tenant count: {spam:#}"
    );

    // At the destination the newsletter came from the regular IP.
    let got = sc.dest.wait_for(5, Duration::from_secs(30)).await;
    let newsletter = got
        .iter()
        .find(|m| m.rcpts.iter().any(|x| x == "subscriber@dest.example"))
        .expect("the victim's newsletter delivered");
    assert_eq!(newsletter.peer.ip().to_string(), REGULAR_IP);
    // The operator heard of the attacker's wave only, under the attacker's tenant.
    let out = sc.ok(&["alerts", "--kind", "campaign_detected", "--json"]);
    let alerts: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = alerts.as_array().expect("alerts");
    assert!(
        list.iter()
            .all(|a| !a["summary"].as_str().unwrap_or("").contains("tenant b")),
        "{alerts:#}"
    );
}

/// The trust ramp restarts at a setback (issue 25 part 2): alice, an account older than the
/// ramp, has her policy's full 40 external recipients an hour; one message of hers called spam
/// puts her back on clean day 1 (10 %: 4 an hour), so the 7th recipient of the hour is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spam_verdict_restarts_the_trust_ramp() {
    let sc = scene("[trust_ramp]\nenabled = true\nstart_percent = 10\ndays = 14\n").await;
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=40",
    ]);
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let alice = Some(("alice@a.example", "alice-pw"));
    let (subject, body) = CLEAN[0];
    let five: Vec<String> = (1..=5).map(|i| format!("r{i}@dest.example")).collect();
    let five: Vec<&str> = five.iter().map(String::as_str).collect();
    let m = message("alice@a.example", five[0], subject, body);
    let r = Client::send_mail(sub, alice, "alice@a.example", &five, &m).await;
    assert!(r.starts_with("250"), "full limits before the setback: {r}");
    let (spam_subject, spam_body) = PHISHING[0];
    let r = send(
        &relay,
        ("alice@a.example", "alice-pw"),
        "x@dest.example",
        spam_subject,
        spam_body,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let t = trace(&sc, &queued_id(&r).unwrap()).await;
    assert_eq!(t["message"]["class"], "spam", "{t:#}");
    let m = message("alice@a.example", "y@dest.example", subject, body);
    let r = Client::send_mail(sub, alice, "alice@a.example", &["y@dest.example"], &m).await;
    assert!(
        r.starts_with("550 5.2.2"),
        "after a spam verdict the ramp starts over (4 an hour, 6 sent): {r}"
    );
}
