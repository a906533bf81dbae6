//! Hard-bounce rates (SPEC §4: "bounce rates do too — hard bounces over 10 % of a minimum
//! sample"). Delivery already traces every permanent failure as a `bounced` event listing the
//! failed recipients; this task follows those events in the store (by sequence number, from
//! the moment the server started) instead of adding a hook to the queue, attributes each to
//! the message's account and tenant, and feeds [`rates::on_event`] with `HARD_BOUNCE` — the
//! same judgement and restriction path as complaints. Only messages of this node are counted,
//! so in cluster mode every bounce is counted once, by the node that delivered it.
//!
//! SPEC §9: a recipient counts at most once per message, whoever reported it (a 5xx at
//! delivery, then a DSN about the same recipient, or one DSN sent twice), and only a recipient
//! the message really had. The store's `fbl_counted` claims make this hold across nodes.
//!
//! The same events fill the tenant's suppression list (issue 25): a recipient whose status is
//! `5.1.x` (event field `rcpt_status`) is suppressed for `[suppression] duration`, for the
//! message's tenant only, whoever sent it (account or connector).

use std::sync::Arc;
use std::time::Duration;

use outguard_store::Suppression;
use outguard_types::model::{EventKind, Submitter, TraceEvent};

use super::rates;
use crate::server::Relay;

/// How often the trace is polled for new bounces.
pub const POLL: Duration = Duration::from_secs(1);
const BATCH: u32 = 500;

/// Follow `bounced` events until shutdown.
pub async fn watch(relay: Arc<Relay>) {
    let mut after = match relay.store.last_event_seq().await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "bounce-rate watcher cannot start");
            return;
        }
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = relay.shutdown.stopped() => return,
        }
        match relay
            .store
            .events_after(EventKind::Bounced, after, BATCH)
            .await
        {
            Ok(events) => {
                for (seq, ev) in events {
                    after = seq;
                    let rcpts: Vec<String> = ev
                        .data
                        .get("rcpts")
                        .and_then(|r| r.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    suppress(&relay, &ev, &rcpts).await;
                    count(&relay, &ev.message_id, &rcpts).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read bounce events"),
        }
    }
}

async fn count(relay: &Relay, message_id: &str, rcpts: &[String]) {
    let Ok(Some(msg)) = relay.store.message(message_id).await else {
        return;
    };
    if msg.node != relay.node {
        return;
    }
    let (Submitter::Account(addr), Some(tenant)) = (&msg.submitter, msg.tenant.as_deref()) else {
        return; // connectors and system mail (DSNs, notifications) are not judged here
    };
    let now = relay.clock.now_ms();
    for rcpt in rcpts.iter().take(1000) {
        let Some(real) = msg.rcpts.iter().find(|r| r.eq_ignore_ascii_case(rcpt)) else {
            continue; // not a recipient of this message: nothing of ours bounced
        };
        let key = real.to_ascii_lowercase();
        match relay
            .store
            .claim_fbl_count(message_id, rates::HARD_BOUNCE, &key, now)
            .await
        {
            Ok(true) => rates::on_event(relay, Some(addr), tenant, rates::HARD_BOUNCE, now).await,
            Ok(false) => tracing::debug!(%message_id, %rcpt, "hard bounce already counted"),
            Err(e) => tracing::warn!(error = %e, "cannot record a counted hard bounce"),
        }
    }
}

/// Suppress, for the message's tenant, each of its recipients that bounced with a `5.1.x`.
async fn suppress(relay: &Relay, ev: &TraceEvent, rcpts: &[String]) {
    let cfg = &relay.cfg.suppression;
    if !cfg.enabled {
        return;
    }
    let status_of = |r: &str| {
        ev.data
            .get("rcpt_status")
            .and_then(|m| m.get(r))
            .and_then(|s| s.as_str())
            .map(str::to_string)
    };
    let hard: Vec<(&String, String)> = rcpts
        .iter()
        .take(1000)
        .filter_map(|r| status_of(r).map(|s| (r, s)))
        .filter(|(_, s)| outguard_policy::suppress::suppresses(s))
        .collect();
    if hard.is_empty() {
        return;
    }
    let Ok(Some(msg)) = relay.store.message(&ev.message_id).await else {
        return;
    };
    let Some(tenant) = msg.tenant.as_deref() else {
        return; // system mail (DSNs, notifications) belongs to no tenant
    };
    if msg.node != relay.node {
        return;
    }
    let source = match ev.data.get("source").and_then(|s| s.as_str()) {
        Some("dsn") => "dsn",
        _ => "bounce",
    };
    let now = relay.clock.now_ms();
    let until = now.saturating_add(i64::try_from(cfg.duration.as_millis()).unwrap_or(i64::MAX));
    for (rcpt, status) in hard {
        if !msg.rcpts.iter().any(|r| r.eq_ignore_ascii_case(rcpt)) {
            continue; // not a recipient of this message
        }
        let s = Suppression {
            tenant: tenant.to_string(),
            recipient: rcpt.clone(),
            until,
            created_at: now,
            source: source.to_string(),
            reason: format!("hard bounce {status}: {}", ev.detail),
            message_id: Some(ev.message_id.clone()),
        };
        match relay.store.suppress(&s).await {
            Ok(_) => {
                tracing::info!(%tenant, %rcpt, %status, "recipient suppressed after a hard bounce")
            }
            Err(e) => tracing::warn!(error = %e, %rcpt, "cannot suppress a hard-bounced recipient"),
        }
    }
}
