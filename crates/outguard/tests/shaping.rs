//! End to end, traffic shaping (issue 22 part 2): a receiver that starts answering
//! `421 4.7.28 … rate limited` after a few messages gets its (source IP, destination) pair
//! slowed; the held-back messages are deferred to the pair's slots — not to the retry schedule
//! (an hour here), not bounced, not counted as attempts — and all arrive; another destination
//! keeps its full speed meanwhile (none of its messages is ever deferred or held back). The
//! trace, `/metrics` and `GET /api/v1/pools` show the pair and why.

mod common;
mod web;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};
use outguard_harness::sink::{Reply as SinkReply, Script};
use tokio::time::Instant;
use web::api;

const WAIT: Duration = Duration::from_secs(60);
const EACH: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_receiver_is_slowed_while_others_keep_full_speed_and_nothing_bounces() {
    // dest.example: 120 messages a minute from one IP (one every 500 ms), halved on throttling;
    // many successes are needed to restore it, so the slowed pair is still listed at the end.
    let sc = scene(
        r#"
[[shaping]]
destination = "dest.example"
messages_per_minute = 120
max_connections = 2

[delivery.adaptive]
restore_after = 1000
min_messages_per_minute = 10
"#,
    )
    .await;
    // A deferral on the retry schedule would wait an hour: only shaping brings them back.
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config");
    let cfg = cfg.replace(
        r#"retry_schedule = ["1s", "1s", "2s"]"#,
        r#"retry_schedule = ["1h"]"#,
    );
    std::fs::write(&path, cfg).expect("config");
    sc.provision().await;
    // Transactions 2 and 3 to dest.example are throttled, then it accepts again.
    sc.dest.set_script(Script::throttle_after(
        2,
        2,
        SinkReply::new(
            421,
            "4.7.28 Our system has detected an unusual rate of mail, rate limited",
        ),
    ));
    let relay = RelayProc::start(sc.dir());
    let http = relay.addr("http");
    let op = relay.token.clone().expect("operator token");

    let mut slow_ids = Vec::new();
    let mut fast_ids = Vec::new();
    for i in 0..EACH {
        for (to, ids) in [
            (format!("s{i}@dest.example"), &mut slow_ids),
            (format!("f{i}@b.example"), &mut fast_ids),
        ] {
            let r = Client::send_mail(
                relay.addr("submission"),
                Some(("alice@a.example", "alice-pw")),
                "alice@a.example",
                &[to.as_str()],
                &message(
                    "alice@a.example",
                    &to,
                    "shaping",
                    "Minutes of the meeting attached.",
                ),
            )
            .await;
            assert!(r.starts_with("250 "), "{r}");
            ids.push(queued_id(&r));
        }
    }

    // Everything arrives, exactly once; no DSN anywhere.
    let slow = sc.dest.wait_for(EACH, WAIT).await;
    let fast = sc.home.wait_for(EACH, WAIT).await;
    assert_eq!(
        slow.len(),
        EACH,
        "dest.example got {} of {EACH}",
        slow.len()
    );
    assert_eq!(fast.len(), EACH, "b.example got {} of {EACH}", fast.len());
    assert!(
        fast.iter().chain(&slow).all(|m| !m.mail_from.is_empty()),
        "a DSN was sent: something bounced"
    );
    assert!(
        sc.dest.transactions() >= (EACH + 2) as u32,
        "the throttle was hit"
    );

    // The trace of every message ends delivered; the throttled destination's show shaping, the
    // other destination's were never deferred or held back.
    let trace_of = |id: &str| sc.ok(&["trace", "--id", id]);
    let deadline = Instant::now() + WAIT;
    let mut shaped = 0;
    for id in slow_ids.iter().chain(&fast_ids) {
        let t = loop {
            let t = trace_of(id);
            if t.contains("delivered") {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never traced delivered:\n{t}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(!t.contains("bounced"), "{id} bounced:\n{t}");
        if fast_ids.contains(id) {
            assert!(
                !t.contains("deferred") && !t.contains("delivery_shaping"),
                "b.example slowed down too:\n{t}"
            );
        } else if t.contains("delivery_shaping") {
            shaped += 1;
        }
    }
    assert!(
        shaped >= 1,
        "no delivery_shaping event in dest.example's traces"
    );
    let all: String = slow_ids.iter().map(|id| trace_of(id)).collect();
    assert!(
        all.contains("dest.example from 127.0.0.2 (pool regular) slowed"),
        "{all}"
    );
    assert!(all.contains("4.7.28"), "{all}");

    // The API's pools list the slowed pair with why; b.example is not there.
    let pools = api(http, "GET", "/api/v1/pools", &op, None).await.json();
    let regular = pools
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "regular"))
        .expect("regular pool")
        .clone();
    let pairs = regular["shaping"].as_array().expect("shaping pairs");
    assert_eq!(pairs.len(), 1, "{regular}");
    assert_eq!(pairs[0]["destination"], "dest.example");
    assert_eq!(pairs[0]["source_ip"], "127.0.0.2");
    assert_eq!(pairs[0]["state"], "slowed");
    assert_eq!(pairs[0]["normal_messages_per_minute"], 120.0);
    assert!(
        pairs[0]["messages_per_minute"]
            .as_f64()
            .is_some_and(|r| r < 120.0),
        "{regular}"
    );
    assert!(
        pairs[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("rate limited")),
        "{regular}"
    );

    // Metrics per (pool, destination).
    let m = web::request(http, "GET", "/metrics", &[], None)
        .await
        .text();
    assert!(
        m.contains("outguard_delivery_shaping_throttled_total{pool=\"regular\",destination=\"dest.example\"} "),
        "{m}"
    );
    assert!(
        m.contains("outguard_delivery_shaping_rate{pool=\"regular\",destination=\"dest.example\",source_ip=\"127.0.0.2\",state=\"slowed\"}"),
        "{m}"
    );
    assert!(!m.contains("destination=\"mx.b.example\""), "{m}");
}
