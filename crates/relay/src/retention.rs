//! The pruning task (issue 17, `[retention]`): every `interval`, delete what is older than each
//! kind's window, oldest first, `batch` rows per statement with `pause` between statements, so
//! the store's writer is never held for long and submissions' writes go between batches. It runs
//! off the hot path as the named task `retention` and stops at shutdown between two batches.
//! Unfinished messages (queued, deferred, held, quarantined) and their trace are never pruned
//! (`Store::prune_batch`). Spool files need no pruning: a finished message's files are removed
//! when it finishes, and orphans left by a crash are removed at the next start. Expired
//! recipient suppressions are deleted in the same pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use outguard_store::{RetentionKind, Store, StoreError};
use outguard_types::config::RetentionConfig;
use outguard_types::model::Millis;

use crate::server::{Relay, Shutdown};

fn window(cfg: &RetentionConfig, kind: RetentionKind) -> Duration {
    match kind {
        RetentionKind::Trace => cfg.trace,
        RetentionKind::Messages => cfg.messages,
        RetentionKind::Reports | RetentionKind::DnsblChecks => cfg.reports,
        RetentionKind::Audit => cfg.audit,
        RetentionKind::Alerts => cfg.alerts,
    }
}

/// The cutoff for `kind` at `now`: records strictly older go.
pub fn cutoff(cfg: &RetentionConfig, kind: RetentionKind, now: Millis) -> Millis {
    let w = i64::try_from(window(cfg, kind).as_millis()).unwrap_or(i64::MAX);
    now.saturating_sub(w)
}

/// One pass over every kind, in batches, until each has nothing older than its window or
/// `shutdown` stops. Returns the records deleted per kind ([`RetentionKind::name`]).
pub async fn prune_pass(
    store: &Store,
    cfg: &RetentionConfig,
    now: Millis,
    shutdown: &Shutdown,
) -> Result<BTreeMap<&'static str, u64>, StoreError> {
    let mut gone = BTreeMap::new();
    for kind in RetentionKind::ALL {
        let before = cutoff(cfg, kind, now);
        let mut total = 0;
        loop {
            let n = store.prune_batch(kind, before, cfg.batch).await?;
            total += n;
            if n < u64::from(cfg.batch) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(cfg.pause) => {}
                _ = shutdown.stopped() => {
                    gone.insert(kind.name(), total);
                    return Ok(gone);
                }
            }
        }
        gone.insert(kind.name(), total);
    }
    // Expired recipient suppressions (issue 25): every read ignores them already; this only
    // keeps the table small.
    let mut total = 0;
    loop {
        let n = store.prune_suppressions(now, cfg.batch).await?;
        total += n;
        if n < u64::from(cfg.batch) || shutdown.is_draining() {
            break;
        }
    }
    gone.insert("suppressions", total);
    Ok(gone)
}

/// The `retention` task: a pass at start and every `interval` after, until shutdown.
pub async fn run(relay: Arc<Relay>) {
    let cfg = relay.cfg.retention.clone();
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = relay.shutdown.stopped() => return,
        }
        let started = std::time::Instant::now();
        let now = relay.clock.now_ms();
        match prune_pass(&relay.store, &cfg, now, &relay.shutdown).await {
            Ok(gone) => {
                relay.metrics.retention_pass(&gone, now);
                if gone.values().any(|n| *n > 0) {
                    tracing::info!(
                        ?gone,
                        took_ms = started.elapsed().as_millis() as u64,
                        "retention: pruned"
                    );
                }
            }
            // The next pass tries again; nothing is half-deleted (each batch is one statement
            // or one transaction).
            Err(e) => tracing::warn!(error = %e, "retention: pruning failed"),
        }
    }
}
