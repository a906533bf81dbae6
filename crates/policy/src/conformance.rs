//! The counter contract as executable checks (STYLE rule 7: one test body for every backend).
//! Each function exercises one clause of the [`crate::counters`] contract against any
//! `&dyn Counters` and returns what went wrong instead of panicking, so the memory backend's
//! tests and a later Redis backend's tests run the very same bodies. Keys start with `prefix`
//! so runs can share one Redis.

use std::sync::Arc;

use outguard_types::model::Millis;

use crate::counters::{Counters, DAY_MS, HOUR_MS, MINUTE_MS, ReserveOutcome, WindowCheck};

type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(what()) }
}

fn err(e: crate::CounterError) -> String {
    e.to_string()
}

fn window(key: String, window_ms: i64, limit: u64) -> WindowCheck {
    WindowCheck {
        key,
        window_ms,
        limit,
    }
}

async fn admits(
    c: &dyn Counters,
    checks: &[WindowCheck],
    n: u32,
    now: Millis,
) -> Result<bool, String> {
    Ok(matches!(
        c.reserve(checks, n, now).await.map_err(err)?,
        ReserveOutcome::Admitted(_)
    ))
}

/// A limit of 100/hour filled just before an hour boundary admits nothing just after it
/// (no 2x at a boundary), and slides one unit free exactly one window later.
pub async fn boundary_is_not_doubled(c: &dyn Counters, prefix: &str, start: Millis) -> Check {
    let w = [window(format!("{prefix}:boundary"), HOUR_MS, 100)];
    for i in 0..100 {
        ensure(admits(c, &w, 1, start + HOUR_MS - 1000 + i).await?, || {
            format!("#{i} refused below the limit")
        })?;
    }
    for t in [
        start + HOUR_MS,
        start + HOUR_MS + 1,
        start + 2 * HOUR_MS - 1001,
    ] {
        ensure(!admits(c, &w, 1, t).await?, || {
            format!("admitted at {t}: window doubled across the boundary")
        })?;
    }
    ensure(admits(c, &w, 1, start + 2 * HOUR_MS - 1000).await?, || {
        "the oldest unit did not slide out".into()
    })?;
    ensure(!admits(c, &w, 1, start + 2 * HOUR_MS - 1000).await?, || {
        "admitted past the limit after sliding".into()
    })?;
    let n = c
        .count(&w[0].key, HOUR_MS, start + 2 * HOUR_MS - 1000)
        .await
        .map_err(err)?;
    ensure(n == 100, || format!("count {n}, want 100"))
}

/// A reservation over two windows records in both or neither and names the refusing window.
pub async fn reserve_is_all_or_nothing(c: &dyn Counters, prefix: &str, now: Millis) -> Check {
    let (h, d) = (format!("{prefix}:aon:h"), format!("{prefix}:aon:d"));
    let checks = [window(h.clone(), HOUR_MS, 10), window(d.clone(), DAY_MS, 5)];
    for _ in 0..5 {
        ensure(admits(c, &checks, 1, now).await?, || {
            "refused below both limits".into()
        })?;
    }
    match c.reserve(&checks, 1, now + 1).await.map_err(err)? {
        ReserveOutcome::Refused { index: 1, count: 5 } => {}
        other => {
            return Err(format!(
                "want Refused {{ index: 1, count: 5 }}, got {other:?}"
            ));
        }
    }
    let n = c.count(&h, HOUR_MS, now + 1).await.map_err(err)?;
    ensure(n == 5, || {
        format!("the refused reservation recorded in the other window ({n})")
    })?;
    let same = [
        window(format!("{prefix}:aon:s"), DAY_MS, 1000),
        window(format!("{prefix}:aon:s"), DAY_MS, 10_000),
    ];
    let ReserveOutcome::Admitted(r) = c.reserve(&same, 2, now).await.map_err(err)? else {
        return Err("two checks on one key refused".into());
    };
    ensure(r.entries.len() == 1, || {
        format!("one key recorded {} times", r.entries.len())
    })?;
    let n = c.count(&same[0].key, DAY_MS, now).await.map_err(err)?;
    ensure(n == 2, || {
        format!("two checks on one key counted {n}, want 2")
    })
}

/// Release gives back exactly one reservation on every key it recorded.
pub async fn release_gives_back(c: &dyn Counters, prefix: &str, now: Millis) -> Check {
    let w = [
        window(format!("{prefix}:rel:k"), HOUR_MS, 3),
        window(format!("{prefix}:rel:d"), DAY_MS, 100),
    ];
    let mut held = Vec::new();
    for t in 0..3 {
        match c.reserve(&w, 1, now + t).await.map_err(err)? {
            ReserveOutcome::Admitted(r) => held.push(r),
            other => return Err(format!("refused below the limit: {other:?}")),
        }
    }
    ensure(!admits(c, &w, 1, now + 10).await?, || {
        "admitted past the limit".into()
    })?;
    c.release(&held[1]).await.map_err(err)?;
    for (key, window_ms) in [(&w[0].key, HOUR_MS), (&w[1].key, DAY_MS)] {
        let n = c.count(key, window_ms, now + 10).await.map_err(err)?;
        ensure(n == 2, || format!("{key}: {n} after release, want 2"))?;
    }
    ensure(admits(c, &w, 1, now + 10).await?, || {
        "released room not reusable".into()
    })?;
    ensure(!admits(c, &w, 1, now + 11).await?, || {
        "release gave back more than it held".into()
    })
}

/// `tasks` concurrent tasks reserving against a limit of `limit` admit exactly `limit`.
pub async fn concurrent_reservations_are_exact(
    c: Arc<dyn Counters>,
    prefix: &str,
    now: Millis,
    tasks: u32,
    limit: u64,
) -> Check {
    let key = format!("{prefix}:conc");
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (c, key) = (c.clone(), key.clone());
        handles.push(tokio::spawn(async move {
            let w = [window(key, HOUR_MS, limit)];
            let mut ok = 0u64;
            for i in 0..(limit * 2 / u64::from(tasks.max(1)) + 1) {
                let at = now + i64::from(t * 7) % 13 + i as i64;
                if let ReserveOutcome::Admitted(_) = c.reserve(&w, 1, at).await.map_err(err)? {
                    ok += 1;
                }
                tokio::task::yield_now().await;
            }
            Ok::<u64, String>(ok)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.map_err(|e| e.to_string())??;
    }
    ensure(total == limit, || {
        format!("{total} admitted against a limit of {limit}")
    })
}

/// `record` counts without a limit and slides; `push_recent` keeps the last `keep`.
pub async fn record_and_recent(c: &dyn Counters, prefix: &str, now: Millis) -> Check {
    let k = format!("{prefix}:rec");
    let got = [
        c.record(&k, 1, HOUR_MS, now).await.map_err(err)?,
        c.record(&k, 2, HOUR_MS, now + MINUTE_MS)
            .await
            .map_err(err)?,
        c.record(&k, 1, HOUR_MS, now + HOUR_MS).await.map_err(err)?,
    ];
    ensure(got == [1, 3, 3], || {
        format!("record counts {got:?}, want [1, 3, 3]")
    })?;
    let r = format!("{prefix}:recent");
    let mut last = (0, 0);
    for i in 0..25 {
        last = c.push_recent(&r, i % 2 == 0, 20).await.map_err(err)?;
    }
    ensure(last == (10, 20), || {
        format!("recent {last:?}, want (10, 20)")
    })
}
