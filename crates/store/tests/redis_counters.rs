//! The counter contract on Redis (STYLE rule 7): the very bodies of
//! `outguard_policy::conformance` that the embedded backend runs, against the shared Redis at
//! 127.0.0.1:6379 (or `$OUTGUARD_TEST_REDIS`) under a random key prefix, plus what only this backend has (server clock,
//! bounded failure, recovery). Redis missing is a failure, never a skip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use outguard_policy::counters::{DAY_MS, HOUR_MS};
use outguard_policy::{Counters, ReserveOutcome, WindowCheck, conformance};
use outguard_store::redis_counters::{RedisClock, RedisCounters};

/// `OUTGUARD_TEST_REDIS` overrides the server (`scripts/test` sets it when it starts its own).
fn url() -> String {
    std::env::var("OUTGUARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn prefix(test: &str) -> String {
    format!("t-{test}-{}", uuid::Uuid::now_v7().simple())
}

async fn connect(test: &str, clock: RedisClock) -> RedisCounters {
    let url = url();
    match RedisCounters::connect(&url, &prefix(test)).await {
        Ok(c) => c.with_clock(clock),
        Err(e) => panic!(
            "Redis is required at {url} ({e}). Start it with: redis-server --daemonize yes \
             --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
        ),
    }
}

/// Run one contract body with a fresh prefix and drop its keys afterwards.
async fn cleanup(c: &RedisCounters) {
    c.purge().await.expect("purge test keys");
}

#[tokio::test]
async fn sliding_window_cannot_be_doubled_across_an_hour_boundary() {
    let c = connect("boundary", RedisClock::Caller).await;
    let r = conformance::boundary_is_not_doubled(&c, "k", 10 * HOUR_MS).await;
    cleanup(&c).await;
    r.unwrap();
}

#[tokio::test]
async fn reservation_is_all_or_nothing_and_reports_the_refusing_window() {
    for clock in [RedisClock::Caller, RedisClock::Server] {
        let c = connect("aon", clock).await;
        let r = conformance::reserve_is_all_or_nothing(&c, "k", 1000).await;
        cleanup(&c).await;
        r.unwrap_or_else(|e| panic!("{clock:?}: {e}"));
    }
}

#[tokio::test]
async fn release_gives_back() {
    for clock in [RedisClock::Caller, RedisClock::Server] {
        let c = connect("release", clock).await;
        let r = conformance::release_gives_back(&c, "k", 0).await;
        cleanup(&c).await;
        r.unwrap_or_else(|e| panic!("{clock:?}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_tasks_against_a_limit_of_100_admit_exactly_100() {
    for clock in [RedisClock::Caller, RedisClock::Server] {
        let c = Arc::new(connect("conc", clock).await);
        let dync: Arc<dyn Counters> = c.clone();
        let r = conformance::concurrent_reservations_are_exact(dync, "k", 1000, 50, 100).await;
        let n = c.count("k:conc", HOUR_MS, 2_000).await;
        cleanup(&c).await;
        r.unwrap_or_else(|e| panic!("{clock:?}: {e}"));
        assert_eq!(n.unwrap(), 100, "{clock:?}");
    }
}

#[tokio::test]
async fn record_count_and_recent() {
    let c = connect("record", RedisClock::Caller).await;
    let r = conformance::record_and_recent(&c, "k", 0).await;
    cleanup(&c).await;
    r.unwrap();
}

/// Two "nodes" whose clocks disagree by hours share one window: the server clock decides.
#[tokio::test]
async fn server_clock_ignores_the_callers_clock() {
    let a = connect("clock", RedisClock::Server).await;
    let b = RedisCounters::connect(&url(), a.prefix()).await.unwrap();
    let w = [WindowCheck {
        key: "acct".into(),
        window_ms: HOUR_MS,
        limit: 3,
    }];
    let skewed = [0, 5 * HOUR_MS, 40 * DAY_MS * 365];
    let mut ats = Vec::new();
    for (i, now) in skewed.iter().enumerate() {
        let node: &RedisCounters = if i % 2 == 0 { &a } else { &b };
        match node.reserve(&w, 1, *now).await.unwrap() {
            ReserveOutcome::Admitted(r) => ats.push(r.entries[0].1),
            other => panic!("#{i} refused: {other:?}"),
        }
    }
    let refused = a.reserve(&w, 1, 99 * DAY_MS * 365).await.unwrap();
    let count = b.count("acct", HOUR_MS, 0).await.unwrap();
    cleanup(&a).await;
    assert!(
        matches!(refused, ReserveOutcome::Refused { index: 0, count: 3 }),
        "{refused:?}"
    );
    assert_eq!(count, 3);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for at in ats {
        assert!(
            (at - wall).abs() < 60_000,
            "recorded at {at}, Redis time is about {wall}"
        );
    }
}

/// Idle keys expire: every log and meta key carries a TTL of about its window.
#[tokio::test]
async fn keys_carry_a_ttl() {
    let c = connect("ttl", RedisClock::Server).await;
    let w = [WindowCheck {
        key: "acct".into(),
        window_ms: HOUR_MS,
        limit: 10,
    }];
    c.reserve(&w, 1, 0).await.unwrap();
    c.record("spam", 1, DAY_MS, 0).await.unwrap();
    c.push_recent("recent", true, 20).await.unwrap();
    let client = redis::Client::open(url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let p = c.prefix().to_string();
    let mut ttls = Vec::new();
    for key in [
        format!("{p}:z:acct"),
        format!("{p}:z:acct|m"),
        format!("{p}:z:spam"),
        format!("{p}:l:recent"),
    ] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        ttls.push((key, ttl));
    }
    cleanup(&c).await;
    for (key, ttl) in ttls {
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        assert!(ttl <= 7 * DAY_MS + 60_000, "{key} TTL {ttl}");
    }
}

/// Nothing listens: every operation fails fast with `Unavailable`, never hangs or admits.
#[tokio::test]
async fn unreachable_redis_fails_fast() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Instant::now();
    let r = RedisCounters::connect(&format!("redis://127.0.0.1:{port}"), "x").await;
    assert!(r.is_err(), "connected to nothing");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

/// Redis stops mid-run (our own server on a free port): calls fail within the timeout, and
/// succeed again once it is back, on the same `RedisCounters`.
#[tokio::test]
async fn recovers_when_redis_comes_back() {
    let mut server = OwnRedis::start();
    let c = RedisCounters::connect(&server.url(), "rec").await.unwrap();
    let w = [WindowCheck {
        key: "a".into(),
        window_ms: HOUR_MS,
        limit: 100,
    }];
    assert!(matches!(
        c.reserve(&w, 1, 0).await,
        Ok(ReserveOutcome::Admitted(_))
    ));
    server.stop();
    for _ in 0..3 {
        let t = Instant::now();
        let r = c.reserve(&w, 1, 0).await;
        assert!(r.is_err(), "admitted while Redis was down: {r:?}");
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            t.elapsed()
        );
    }
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.reserve(&w, 1, 0).await {
            Ok(ReserveOutcome::Admitted(_)) => break,
            other if Instant::now() > deadline => panic!("did not recover: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A redis-server of our own on a free loopback port (never the shared one), killed on drop.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut me = OwnRedis { port, child: None };
        me.restart();
        me
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (/usr/bin/redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "own redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The policy decision on Redis, measured: one RCPT's reservation (external/hour, all/day and
/// the daily ceiling, as `reserve_recipient` plans it) and its release, sequentially and from
/// 16 concurrent tasks. Prints p50/p99; fails only when far off the 1 ms target (debug build
/// on a shared machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_latency() {
    let c = Arc::new(connect("lat", RedisClock::Server).await);
    let checks = |acct: usize| {
        vec![
            WindowCheck {
                key: format!("a:{acct}:ext"),
                window_ms: HOUR_MS,
                limit: 1_000_000,
            },
            WindowCheck {
                key: format!("a:{acct}:rcpt"),
                window_ms: DAY_MS,
                limit: 1_000_000,
            },
            WindowCheck {
                key: format!("a:{acct}:rcpt"),
                window_ms: DAY_MS,
                limit: 10_000,
            },
        ]
    };
    let w = checks(0);
    for _ in 0..200 {
        c.reserve(&w, 1, 0).await.unwrap(); // warm up: scripts loaded, connection up
    }
    let mut lat = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        let r = c.reserve(&w, 1, 0).await.unwrap();
        lat.push(t.elapsed());
        if let ReserveOutcome::Admitted(r) = r
            && lat.len() % 2 == 0
        {
            c.release(&r).await.unwrap();
        }
    }
    let (p50, p99) = percentiles(&mut lat);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let c = c.clone();
        let w = checks(t % 4);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for _ in 0..500 {
                let s = Instant::now();
                c.reserve(&w, 1, 0).await.unwrap();
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let (c50, c99) = percentiles(&mut all);
    cleanup(&c).await;
    println!(
        "redis reserve (3 checks): sequential p50 {p50:?} p99 {p99:?}; \
         16 concurrent p50 {c50:?} p99 {c99:?}, {rate:.0} decisions/s"
    );
    assert!(p99 < Duration::from_millis(20), "sequential p99 {p99:?}");
}

fn percentiles(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (at(0.50), at(0.99))
}
