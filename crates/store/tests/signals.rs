//! The sender signals' store contract (`outguard_policy::signals::conformance`, issue 19): the
//! same bodies on the embedded backend and on the shared Redis at 127.0.0.1:6379 (or
//! `$OUTGUARD_TEST_REDIS`) under a random key prefix; Redis missing is a failure, never a skip.
//! Plus the embedded backend's snapshot keeping the state across a restart.

use outguard_policy::SignalStore;
use outguard_policy::signals::conformance as c;
use outguard_store::memory_counters::MemoryCounters;
use outguard_store::redis_counters::{RedisClock, RedisCounters};

// 2026-11-23 18:00:00 UTC
const NOW: i64 = 1_795_456_800_000;

fn url() -> String {
    std::env::var("OUTGUARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The wall clock, for the expiry checks (Redis judges expiries by its own clock).
fn wall_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(NOW)
}

async fn redis(test: &str) -> RedisCounters {
    let url = url();
    let prefix = format!("t-sig-{test}-{}", uuid::Uuid::now_v7().simple());
    match RedisCounters::connect(&url, &prefix).await {
        Ok(c) => c.with_clock(RedisClock::Caller),
        Err(e) => panic!("Redis is required at {url} ({e}); start redis-server on 127.0.0.1:6379"),
    }
}

async fn every_body(s: &dyn SignalStore, p: &str) -> Result<(), String> {
    c::reputation_cycle(s, p, NOW).await?;
    c::reputation_expires(s, p, wall_now()).await?;
    c::hourly_buckets(s, p, NOW).await?;
    c::first_seen_counts(s, p, NOW).await?;
    c::near_lists(s, p, NOW).await?;
    c::marks(s, p, NOW).await?;
    c::campaign_is_shared(s, p, NOW).await?;
    c::campaign_weighs_tenants(s, p, NOW).await?;
    c::login_networks(s, p, NOW).await
}

#[tokio::test]
async fn contract_holds_on_the_embedded_backend() {
    every_body(&MemoryCounters::new(), "m").await.unwrap();
}

#[tokio::test]
async fn contract_holds_on_redis() {
    let r = redis("contract").await;
    let out = every_body(&r, "r").await;
    r.purge().await.unwrap();
    out.unwrap();
}

/// Two nodes on one Redis see one campaign: what one node noted, the other counts.
#[tokio::test]
async fn two_nodes_share_campaign_fingerprints_and_reputation() {
    let a = redis("nodes").await;
    let b = RedisCounters::connect(&url(), a.prefix())
        .await
        .unwrap()
        .with_clock(RedisClock::Caller);
    use outguard_policy::Subject;
    use outguard_policy::signals::{campaign, reputation};
    let text = "Security notice: unusual sign-in activity was detected on your account. \
                Confirm your identity within 12 hours at https://id-check.example/confirm \
                or the account will be locked.";
    let fp = campaign::fingerprint(text).unwrap();
    let u = |n: u32| Subject::Account(format!("u{n}@x.example"));
    campaign::assess(&a, fp, &u(1), "t", true, NOW)
        .await
        .unwrap();
    campaign::assess(&b, fp, &u(2), "t", false, NOW + 1)
        .await
        .unwrap();
    let third = campaign::assess(&a, fp, &u(3), "t", false, NOW + 2)
        .await
        .unwrap();
    assert!(third.matched(), "{third:?}");
    reputation::note(&a, &u(1), outguard_types::verdict::Class::Spam, NOW)
        .await
        .unwrap();
    let on_b = reputation::note(&b, &u(1), outguard_types::verdict::Class::Clean, NOW)
        .await
        .unwrap();
    assert!(on_b.is_some(), "node b sees node a's spam");
    assert!(reputation::clear(&b, &u(1)).await.unwrap());
    a.purge().await.unwrap();
}

#[tokio::test]
async fn the_snapshot_keeps_the_signals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counters.json");
    let m = MemoryCounters::new();
    m.reputation("rep:a:x@y.example", true, 20, NOW)
        .await
        .unwrap();
    m.hourly("h", 7, NOW, 168).await.unwrap();
    m.save(&path).unwrap();
    let back = MemoryCounters::load(&path).unwrap();
    assert_eq!(
        back.reputation("rep:a:x@y.example", false, 20, NOW)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(back.hourly("h", 0, NOW, 2).await.unwrap(), vec![7, 0]);
}
