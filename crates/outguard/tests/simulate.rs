//! End to end, the what-if simulator (issue 22): real traffic through the real relay restricts
//! some accounts (a recipient limit crossed mid-transaction, one crossed by a transaction's
//! first RCPT, spam per hour); `outguard simulate` with the real settings then reproduces the
//! real restrictions exactly — same accounts, same limits, same times — a looser candidate
//! restricts nobody and a tighter one more; bad keys and spans are exit 64 naming them.

mod common;

use common::client::Client;
use common::{RelayProc, message, scene};
use serde_json::Value;

async fn send(relay: &RelayProc, who: (&str, &str), rcpts: &[String]) -> Vec<String> {
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    c.cmd("EHLO c.test").await;
    assert!(c.auth_plain(who.0, who.1).await.starts_with("235"));
    let r = c.cmd(&format!("MAIL FROM:<{}>", who.0)).await;
    if !r.starts_with("250") {
        return vec![r];
    }
    let mut replies = Vec::new();
    for to in rcpts {
        replies.push(c.cmd(&format!("RCPT TO:<{to}>")).await);
    }
    if replies.iter().any(|r| r.starts_with("250")) {
        c.cmd("DATA").await;
        c.send_raw(message(who.0, "list@dest.example", "News", "News of the month.").as_bytes())
            .await;
        replies.push(c.cmd(".").await);
    }
    c.cmd("QUIT").await;
    replies
}

fn rcpts(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("r{i}@dest.example"))
        .collect()
}

/// Corpus spam re-addressed to `from`, well over the spam threshold.
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

/// (subject, limit, at) of a list of restrictions as `simulate --json` or `restricted list
/// --json` print them.
fn triples(list: &Value, at: &str) -> Vec<(String, String, i64)> {
    let mut v: Vec<(String, String, i64)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            let limit = r["limit"]
                .as_str()
                .or_else(|| r["reason"]["limit"].as_str())
                .unwrap_or("")
                .to_string();
            (
                r["subject"]["id"]
                    .as_str()
                    .unwrap_or("")
                    .to_ascii_lowercase(),
                limit,
                r[at].as_i64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_with_the_real_settings_reproduces_the_real_restrictions() {
    let sc = scene("").await;
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=5",
        "spam_messages_per_hour=2",
    ]);
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let bob = ("bob@a.example", "bob-pw");
    let alice = ("alice@a.example", "alice-pw");
    let ghost = ("ghost@ghost.example", "ghost-pw");

    // bob: 3, then 3 more in one transaction — the 6th recipient crosses 5/hour mid-transaction
    // (the first two of it are sent), then refused at MAIL.
    let r = send(&relay, bob, &rcpts(0, 3)).await;
    assert!(r.iter().all(|x| x.starts_with("250")), "{r:?}");
    let r = send(&relay, bob, &rcpts(3, 3)).await;
    assert_eq!(r[2], "550 5.2.2 Submission quota exceeded", "{r:?}");
    assert!(r[3].starts_with("250"), "{r:?}");
    let r = send(&relay, bob, &rcpts(6, 1)).await;
    assert!(r[0].starts_with("550 5.1.8"), "{r:?}");
    // alice: exactly 5 in one transaction, then a transaction whose first RCPT crosses (no
    // message is ever made of it).
    let r = send(&relay, alice, &rcpts(10, 5)).await;
    assert!(r.iter().all(|x| x.starts_with("250")), "{r:?}");
    let r = send(&relay, alice, &rcpts(20, 2)).await;
    assert_eq!(r[0], "550 5.2.2 Submission quota exceeded", "{r:?}");
    assert!(r[1].starts_with("550 5.1.8"), "{r:?}");
    // ghost: two spam messages reach 2/hour.
    for m in corpus_spam(ghost.0, 3) {
        Client::send_mail(sub, Some(ghost), ghost.0, &["x@dest.example"], &m).await;
    }
    // Let the trace writer flush, then stop the relay: the replay reads the store.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut relay = relay;
    relay.terminate();

    let real: Value =
        serde_json::from_str(&sc.ok(&["restricted", "list", "--json"])).expect("json");
    let real = triples(&real, "created_at");
    assert_eq!(
        real.iter()
            .map(|(s, l, _)| (s.as_str(), l.as_str()))
            .collect::<Vec<_>>(),
        [
            ("alice@a.example", "external_per_hour"),
            ("bob@a.example", "external_per_hour"),
            ("ghost@ghost.example", "spam_per_hour"),
        ]
    );

    // The replay with the settings in force.
    let out: Value =
        serde_json::from_str(&sc.ok(&["simulate", "--since", "1h", "--json"])).expect("json");
    let sim = triples(&out["restrictions"], "at");
    assert_eq!(sim.len(), real.len(), "{out:#}");
    for ((s, l, at), (rs, rl, rat)) in sim.iter().zip(&real) {
        assert_eq!((s, l), (rs, rl));
        // The RCPT crossings are replayed at the refusal's recorded time (the same clock
        // reading the relay restricted with); a spam crossing at the message's receive time,
        // which the relay records right after counting the verdict.
        let slack = if l == "spam_per_hour" { 1_000 } else { 0 };
        assert!(
            (at - rat).abs() <= slack,
            "{s} {l}: simulated {at}, real {rat}"
        );
    }
    let diff = &out["diff"];
    assert_eq!(diff["same"].as_array().map(Vec::len), Some(3), "{diff:#}");
    assert_eq!(diff["only_real"], serde_json::json!([]));
    assert_eq!(diff["only_simulated"], serde_json::json!([]));
    // Recipients refused: bob's 6th (5.2.2), alice's two (5.2.2, 5.1.8). bob's and ghost's
    // mail refused at MAIL never named its recipients (see the approximations).
    assert_eq!(out["refused_by_reply"]["550 5.2.2"], 2, "{out:#}");
    assert!(!out["approximations"].as_array().expect("list").is_empty());

    // A looser candidate restricts nobody; the difference lists the three.
    let out: Value = serde_json::from_str(&sc.ok(&[
        "simulate",
        "--since",
        "1h",
        "--json",
        "--set",
        "recipient_limit_external_per_hour=50",
        "--set",
        "spam_messages_per_hour=10",
    ]))
    .expect("json");
    assert_eq!(out["restrictions"], serde_json::json!([]));
    assert_eq!(out["diff"]["only_real"].as_array().map(Vec::len), Some(3));
    assert_eq!(out["refused"], 0);
    // A tighter one restricts the same three earlier, and refuses more recipients.
    let out: Value = serde_json::from_str(&sc.ok(&[
        "simulate",
        "--since",
        "1h",
        "--json",
        "--tenant",
        "a",
        "--set",
        "recipient_limit_external_per_hour=2",
        "--set",
        "spam_messages_per_hour=1",
    ]))
    .expect("json");
    let tight = triples(&out["restrictions"], "at");
    assert_eq!(tight.len(), 3, "{out:#}");
    for ((s, l, at), (rs, rl, rat)) in tight.iter().zip(&real) {
        assert_eq!((s, l), (rs, rl));
        assert!(at < rat, "{s}: restricted earlier with the tighter limit");
    }
    assert!(out["refused"].as_u64().unwrap_or(0) > 3, "{out:#}");

    // The readable report says the same.
    let text = sc.ok(&["simulate", "--since", "1h"]);
    assert!(
        text.contains("3 the same, 0 new, 0 that would not have happened"),
        "{text}"
    );
    // Bad usage names the key (exit 64); nothing is changed by any of this.
    for (args, names) in [
        (vec!["--set", "bogus_key=1"], "bogus_key"),
        (vec!["--set", "spam_ratio=2"], "spam_ratio"),
        (
            vec!["--set", "recipient_limit_per_day"],
            "recipient_limit_per_day",
        ),
        (vec!["--since", "40d"], "since"),
    ] {
        let mut all = vec!["simulate"];
        all.extend(args);
        let (code, _, err) = sc.cli(&all);
        assert_eq!(code, 64, "{all:?}: {err}");
        assert!(err.contains(names), "{all:?}: {err}");
    }
    let after: Value =
        serde_json::from_str(&sc.ok(&["restricted", "list", "--json"])).expect("json");
    assert_eq!(triples(&after, "created_at"), real);
}
