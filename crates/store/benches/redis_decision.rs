//! Policy decision cost on the cluster counters (issue 8: p99 ≤ 1 ms): one full RCPT decision
//! (`reserve_recipient`: three sliding windows on the account and tenant keys in one atomic
//! Lua script, time from Redis `TIME`) against the Redis at 127.0.0.1:6379, measured per call
//! from the caller's side, alone and with 8 and 32 decisions in flight at once (as many SMTP
//! sessions deciding together on one node).
//!
//! `cargo bench -p outguard-store --bench redis_decision`
//! (`REDIS_URL` to point elsewhere on loopback; keys go under a fresh prefix, purged at the end.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use outguard_policy::{Counters, RcptDecision, RcptRequest, SenderRef, reserve_recipient};
use outguard_store::redis_counters::RedisCounters;
use outguard_types::policy::{EffectivePolicy, PolicySettings};

const PER_RUN: usize = 20_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn policy() -> EffectivePolicy {
    let s = PolicySettings {
        recipient_limit_external_per_hour: Some(10_000),
        recipient_limit_internal_per_hour: Some(10_000),
        recipient_limit_per_day: Some(10_000),
        ..Default::default()
    };
    s.resolve(&PolicySettings::default(), &PolicySettings::default())
}

async fn decide(c: &RedisCounters, eff: &EffectivePolicy, i: usize) -> Duration {
    let acct = format!("user{}@tenant{}.example", i % 1000, i % 50);
    let tenant = format!("t{}", i % 50);
    let req = RcptRequest {
        sender: SenderRef::Account(&acct),
        tenant: &tenant,
        internal: i.is_multiple_of(4),
        n: 1,
    };
    let t = Instant::now();
    let d = reserve_recipient(c, &req, eff, &[], now_ms())
        .await
        .expect("Redis must answer");
    let took = t.elapsed();
    // Keep the windows from filling: give back most reservations, as aborted transactions do.
    if let RcptDecision::Admit { reservation, .. } = &d
        && !i.is_multiple_of(8)
    {
        let _ = c.release(reservation).await;
    }
    took
}

async fn run(c: Arc<RedisCounters>, eff: Arc<EffectivePolicy>, in_flight: usize) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..in_flight {
        let (c, eff) = (c.clone(), eff.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(PER_RUN / in_flight);
            for k in 0..PER_RUN / in_flight {
                lat.push(decide(&c, &eff, w * 7919 + k).await);
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::with_capacity(PER_RUN);
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let wall = start.elapsed();
    lat.sort_unstable();
    let n = lat.len();
    let p = |q: f64| lat[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
    println!(
        "rcpt_decision_redis in_flight={in_flight:>2}: p50 {:>6.0} us, p99 {:>6.0} us, p99.9 {:>6.0} us, max {:>6.0} us; {:>6.0} decisions/s ({n} decisions)",
        p(0.50),
        p(0.99),
        p(0.999),
        lat[n - 1].as_secs_f64() * 1e6,
        n as f64 / wall.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means "not this one".
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && a != "redis_decision")
    {
        return;
    }
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let prefix = format!("bench-{}", uuid::Uuid::now_v7().simple());
        let c = match RedisCounters::connect(&url, &prefix).await {
            Ok(c) => Arc::new(c),
            Err(e) => {
                eprintln!(
                    "Redis is needed at {url} ({e}); start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
                );
                std::process::exit(69);
            }
        };
        let eff = Arc::new(policy());
        // Warm up: the script is loaded, the connection established.
        for i in 0..500 {
            decide(&c, &eff, i).await;
        }
        for in_flight in [1, 8, 32] {
            run(c.clone(), eff.clone(), in_flight).await;
        }
        let _ = c.purge().await;
    });
}
