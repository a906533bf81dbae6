//! Provider deferrals attributed to the sender (issue 25 part 5), the I/O half. Delivery
//! already traces every attempt with each recipient's reply (`attempt` events); this task
//! follows those events in the store, as the bounce watcher follows `bounced` ones, so the
//! delivery crate knows nothing of accounts or policy. A deferral whose reply matches
//! `[provider_deferrals] patterns` counts its message once (the store's `fbl_counted` claim,
//! atomic across nodes) for its account and tenant over the window, in the counter store the
//! limits use (in-process or Redis); `outguard_policy::deferrals::judge` says when that is a
//! spam signal, and the action goes through the enforcement seam like every other. The message's
//! trace gets a `policy` event naming the signal and the counts.
//!
//! Traffic shaping reacts to the same replies per (IP, destination) inside delivery; this is in
//! addition to it. Only this node's messages are counted (each attempt is traced once, by the
//! node that made it).

use std::sync::Arc;

use outguard_policy::crossing::actions;
use outguard_policy::decide::keys;
use outguard_policy::deferrals::{COUNTER, PROVIDER_DEFERRALS, judge};
use outguard_policy::{Subject, crossing::Crossing};
use outguard_types::model::{EventKind, Millis, Submitter, TraceEvent};
use serde_json::json;

use super::bounces::POLL;
use crate::server::Relay;

const BATCH: u32 = 500;

/// Follow `attempt` events until shutdown.
pub async fn watch(relay: Arc<Relay>) {
    if !relay.cfg.provider_deferrals.enabled {
        return;
    }
    let mut after = match relay.store.last_event_seq().await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "provider-deferral watcher cannot start");
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
            .events_after(EventKind::Attempt, after, BATCH)
            .await
        {
            Ok(events) => {
                for (seq, ev) in events {
                    after = seq;
                    if let Some(reply) = blaming_reply(&relay, &ev) {
                        count(&relay, &ev.message_id, &reply).await;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read delivery attempt events"),
        }
    }
}

/// The first deferral reply of the attempt (or its connection error) that blames the sender.
fn blaming_reply(relay: &Relay, ev: &TraceEvent) -> Option<String> {
    let cfg = &relay.cfg.provider_deferrals;
    let deferred = ev
        .data
        .get("replies")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter(|r| r.get("result").and_then(|x| x.as_str()) == Some("deferred"))
        .filter_map(|r| r.get("reply").and_then(|x| x.as_str()));
    let error = ev.data.get("error").and_then(|e| e.as_str());
    deferred
        .chain(error)
        .take(1000)
        .find(|reply| cfg.matches(reply))
        .map(str::to_string)
}

async fn count(relay: &Relay, message_id: &str, reply: &str) {
    let Ok(Some(msg)) = relay.store.message(message_id).await else {
        return;
    };
    let Some(tenant) = msg.tenant.as_deref() else {
        return; // system mail (DSNs, notifications) belongs to no tenant
    };
    if msg.node != relay.node {
        return;
    }
    let now = relay.clock.now_ms();
    match relay
        .store
        .claim_fbl_count(message_id, COUNTER, "", now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return, // this message was counted at an earlier attempt
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a counted provider deferral");
            return;
        }
    }
    let cfg = &relay.cfg.provider_deferrals;
    let window_ms = i64::try_from(cfg.window.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let window = humantime::format_duration(cfg.window).to_string();
    let mut subjects = Vec::with_capacity(2);
    if let Submitter::Account(addr) = &msg.submitter {
        subjects.push((
            Subject::Account(addr.clone()),
            keys::account(addr, COUNTER),
            cfg.account_after,
        ));
    }
    subjects.push((
        Subject::Tenant(tenant.to_string()),
        keys::tenant(tenant, COUNTER),
        cfg.tenant_after,
    ));
    let mut counted = Vec::with_capacity(2);
    for (subject, key, line) in subjects {
        let n = match relay
            .enforcer
            .counters
            .record(&key, 1, window_ms, now)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count a provider deferral");
                continue;
            }
        };
        counted.push(format!("{} {n} of {line} in {window}", subject.id()));
        if let Some(c) = judge(subject, tenant, n, line, &window, reply) {
            act(relay, &c, now).await;
        }
    }
    let ev = TraceEvent {
        message_id: message_id.to_string(),
        at: now,
        kind: EventKind::Policy,
        detail: format!(
            "{PROVIDER_DEFERRALS}: deferral blames the sender, counted for {}",
            counted.join(", ")
        ),
        data: json!({"signal": PROVIDER_DEFERRALS, "reply": reply, "counted": counted}),
    };
    if let Err(e) = relay.store.append_events(&[ev]).await {
        tracing::warn!(error = %e, "cannot trace a provider deferral");
    }
}

/// Alert (once a day per subject) and, for an account with `restrict`, restrict it with its
/// policy's spam action.
async fn act(relay: &Relay, c: &Crossing<'_>, now: Millis) {
    let history = relay.enforcer.cache.restrictions();
    let sender = match &c.subject {
        Subject::Account(a) => a.as_str(),
        _ => "",
    };
    let (_, eff) = relay.effective(c.tenant, sender).await;
    let alerted = super::rates::alerted_today(relay, c.kind, c.tenant, &c.subject, now).await;
    let restrict_with = relay
        .cfg
        .provider_deferrals
        .restrict
        .then_some(eff.spam_action);
    tracing::warn!(subject = c.subject.id(), summary = %c.summary, "provider deferrals blame the sender");
    for action in actions(c, &history, alerted, restrict_with, now) {
        relay.take_action(action, &eff).await;
    }
}
