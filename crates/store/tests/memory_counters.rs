//! The counter contract on the embedded backend: exact sliding windows, atomic multi-window
//! reservations, release, concurrency and persistence. The Redis backend runs the same
//! `outguard_policy::conformance` bodies in `redis_counters.rs`; each takes `&dyn Counters`.

use std::sync::Arc;

use outguard_policy::counters::{HOUR_MS, MINUTE_MS};
use outguard_policy::{Counters, ReserveOutcome, WindowCheck, conformance};
use outguard_store::memory_counters::MemoryCounters;
use proptest::prelude::*;

fn check(key: &str, window_ms: i64, limit: u64) -> WindowCheck {
    WindowCheck {
        key: key.into(),
        window_ms,
        limit,
    }
}

async fn admitted(c: &dyn Counters, checks: &[WindowCheck], n: u32, now: i64) -> bool {
    matches!(
        c.reserve(checks, n, now).await.unwrap(),
        ReserveOutcome::Admitted(_)
    )
}

// The contract bodies (shared with every backend) on the embedded one.

#[tokio::test]
async fn sliding_window_cannot_be_doubled_across_an_hour_boundary() {
    conformance::boundary_is_not_doubled(&MemoryCounters::new(), "t", 10 * HOUR_MS)
        .await
        .unwrap();
}

#[tokio::test]
async fn reservation_is_all_or_nothing_and_reports_the_refusing_window() {
    conformance::reserve_is_all_or_nothing(&MemoryCounters::new(), "t", 1000)
        .await
        .unwrap();
}

#[tokio::test]
async fn release_gives_back() {
    conformance::release_gives_back(&MemoryCounters::new(), "t", 0)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_tasks_against_a_limit_of_100_admit_exactly_100() {
    let c: Arc<dyn Counters> = Arc::new(MemoryCounters::new());
    conformance::concurrent_reservations_are_exact(c.clone(), "t", 1000, 50, 100)
        .await
        .unwrap();
    assert_eq!(c.count("t:conc", HOUR_MS, 2_000).await.unwrap(), 100);
}

#[tokio::test]
async fn record_count_and_recent() {
    conformance::record_and_recent(&MemoryCounters::new(), "t", 0)
        .await
        .unwrap();
}

#[tokio::test]
async fn n_units_at_once_are_refused_whole() {
    let c = MemoryCounters::new();
    assert!(admitted(&c, &[check("k", HOUR_MS, 10)], 7, 0).await);
    assert!(!admitted(&c, &[check("k", HOUR_MS, 10)], 4, 1).await);
    assert!(admitted(&c, &[check("k", HOUR_MS, 10)], 3, 1).await);
}

#[tokio::test]
async fn snapshot_round_trip_keeps_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = MemoryCounters::snapshot_path(dir.path());
    let c = MemoryCounters::new();
    let w = [
        check("a:u@x:ext", HOUR_MS, 5),
        check("a:u@x:rcpt", 24 * HOUR_MS, 1000),
    ];
    for t in 0..5 {
        assert!(admitted(&c, &w, 1, t * 1000).await);
    }
    c.push_recent("a:u@x:recent", true, 20).await.unwrap();
    c.save(&path).unwrap();
    let back = MemoryCounters::load(&path).unwrap();
    assert!(
        !admitted(&back, &w, 1, 10_000).await,
        "restart kept the full window"
    );
    assert_eq!(
        back.count("a:u@x:rcpt", 24 * HOUR_MS, 10_000)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        back.push_recent("a:u@x:recent", false, 20).await.unwrap(),
        (1, 2)
    );
    assert!(admitted(&back, &w, 1, HOUR_MS).await, "and it still slides");
    // Missing file: empty store. Corrupt file: an error naming the file, not a panic.
    assert!(
        MemoryCounters::load(&dir.path().join("none.json"))
            .unwrap()
            .is_empty()
    );
    std::fs::write(dir.path().join("bad.json"), b"{not json").unwrap();
    let e = MemoryCounters::load(&dir.path().join("bad.json"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("bad.json"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn persist_until_writes_on_interval_and_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = MemoryCounters::snapshot_path(dir.path());
    let c = Arc::new(MemoryCounters::new());
    c.record("k", 3, HOUR_MS, 1_000).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let (c, path) = (c.clone(), path.clone());
        tokio::spawn(async move {
            c.persist_until(&path, std::time::Duration::from_secs(5), || 2_000, async {
                let _ = rx.await;
            })
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(path.exists(), "written on the interval");
    c.record("k", 4, HOUR_MS, 1_500).await.unwrap();
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    let back = MemoryCounters::load(&path).unwrap();
    assert_eq!(
        back.count("k", HOUR_MS, 2_000).await.unwrap(),
        7,
        "written again on shutdown"
    );
}

#[tokio::test]
async fn sweep_drops_expired_keys() {
    let c = MemoryCounters::new();
    c.record("old", 1, MINUTE_MS, 0).await.unwrap();
    c.record("new", 1, MINUTE_MS, 10 * MINUTE_MS).await.unwrap();
    c.sweep(10 * MINUTE_MS);
    assert_eq!(c.len(), 1);
}

/// Replay admitted (time, n) events and return the largest sum in any half-open span of
/// length `w` (every window starts just after some event's time minus w, so checking windows
/// ending at each event time is enough).
fn max_in_any_window(events: &[(i64, u64)], w: i64) -> u64 {
    let mut ev = events.to_vec();
    ev.sort();
    ev.iter()
        .map(|(end, _)| {
            ev.iter()
                .filter(|(t, _)| *t > end - w && t <= end)
                .map(|(_, n)| n)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// MemoryCounters futures are always ready: poll once (no runtime per proptest step).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("MemoryCounters future was not ready"),
    }
}

#[test]
fn the_window_checker_itself_sees_overflows() {
    assert_eq!(max_in_any_window(&[(0, 5), (999, 5), (1000, 1)], 1000), 10);
    assert_eq!(max_in_any_window(&[(0, 5), (999, 1), (1000, 5)], 1000), 6);
    assert_eq!(max_in_any_window(&[(0, 5), (1000, 5)], 1000), 5);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, .. ProptestConfig::default() })]

    /// Under random arrival times (including callers whose `now` is behind others') and sizes,
    /// no span of length W ever holds more than N admitted units, for two windows at once.
    #[test]
    fn no_window_ever_exceeds_its_limit(
        arrivals in proptest::collection::vec((0i64..20_000, 1u32..4, any::<bool>()), 1..300),
        short_limit in 1u64..20,
        long_limit in 5u64..60,
    ) {
        let c = MemoryCounters::new();
        let (short_w, long_w) = (1_000i64, 7_000i64);
        let checks = [check("k", short_w, short_limit), check("k", long_w, long_limit)];
        let mut admitted_events = Vec::new();
        let mut clock = 0i64;
        for (step, n, release) in arrivals {
            // Mostly forward, sometimes a caller whose clock is behind.
            clock = if step % 7 == 0 { (clock - step % 500).max(0) } else { clock + step % 300 };
            match ready(c.reserve(&checks, n, clock)).unwrap() {
                ReserveOutcome::Admitted(r) => {
                    // Released reservations (aborted transactions) are not in the bound; a
                    // release of the latest event once let pruning lose events (found here).
                    if release && n == 3 {
                        ready(c.release(&r)).unwrap();
                    } else {
                        admitted_events.push((r.entries[0].1, u64::from(n)));
                    }
                }
                ReserveOutcome::Refused { .. } => {}
            }
        }
        prop_assert!(max_in_any_window(&admitted_events, short_w) <= short_limit);
        prop_assert!(max_in_any_window(&admitted_events, long_w) <= long_limit);
    }
}
