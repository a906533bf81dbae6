//! Complaint (and hard-bounce) rates per account and tenant (SPEC §4), the I/O half: counters
//! over the `[fbl] window` — recipients delivered, complaints, hard bounces — in the same counter
//! store the sending limits use, judged and turned into actions by `outguard_policy::rates`, and
//! taken through the enforcement seam like any other policy action.

use outguard_policy::decide::keys;
use outguard_policy::rates::{RateCrossing, RateRule, rate_actions};
use outguard_policy::restriction::utc_day_start;
use outguard_policy::{AlertKind, Subject};
use outguard_types::config::FblConfig;
use outguard_types::model::Millis;

use crate::server::Relay;
use crate::smtp::identity::Identity;

pub use outguard_policy::rates::{COMPLAINT, HARD_BOUNCE, Judgement, SENT, judge};

fn window_ms(cfg: &FblConfig) -> i64 {
    i64::try_from(cfg.window.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// Count `n` delivered recipients for the submitter (called once per accepted message).
pub async fn count_sent(relay: &Relay, identity: &Identity, n: usize, now: Millis) {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let w = window_ms(&relay.cfg.fbl);
    let mut keys_to = Vec::with_capacity(2);
    if let Identity::Account { address, .. } = identity {
        keys_to.push(keys::account(address, SENT));
    }
    if let Some(t) = identity.tenant() {
        keys_to.push(keys::tenant(t, SENT));
    }
    for k in keys_to {
        if let Err(e) = relay.enforcer.counters.record(&k, n, w, now).await {
            tracing::warn!(error = %e, "cannot count delivered recipients for complaint rates");
        }
    }
}

/// Record one event (`COMPLAINT` or `HARD_BOUNCE`) on a key and return (events, sent).
async fn bump(
    relay: &Relay,
    key: impl Fn(&str) -> String,
    what: &str,
    now: Millis,
) -> Option<(u64, u64)> {
    let w = window_ms(&relay.cfg.fbl);
    let c = &relay.enforcer.counters;
    let events = c.record(&key(what), 1, w, now).await.ok()?;
    let sent = c.count(&key(SENT), w, now).await.ok()?;
    Some((events, sent))
}

/// A complaint about `account`'s mail in `tenant`: count it, judge, alert / restrict.
pub async fn on_event(relay: &Relay, account: Option<&str>, tenant: &str, what: &str, now: Millis) {
    let rule = RateRule::for_event(&relay.cfg.fbl, what);
    if let Some(addr) = account {
        relay.ramp_setback(addr, now).await;
    }
    let mut subjects = Vec::with_capacity(2);
    if let Some(addr) = account {
        subjects.push(Subject::Account(addr.to_string()));
    }
    subjects.push(Subject::Tenant(tenant.to_string()));
    for subject in subjects {
        let counted = match &subject {
            Subject::Account(a) => bump(relay, |w| keys::account(a, w), what, now).await,
            _ => bump(relay, |w| keys::tenant(tenant, w), what, now).await,
        };
        let Some((events, sent)) = counted else {
            continue;
        };
        let crossing = RateCrossing {
            judgement: rule.judge(&subject, events, sent),
            subject,
            tenant,
            events,
            sent,
            limit: rule.limit,
        };
        act(relay, &crossing, now).await;
    }
}

/// Take what the judged rate calls for: the policy crate decides, with the restrictions, the
/// policy and whether this alert was already raised today read here.
async fn act(relay: &Relay, c: &RateCrossing<'_>, now: Millis) {
    if matches!(c.judgement, Judgement::TooFew | Judgement::Below) {
        return;
    }
    let history = relay.enforcer.cache.restrictions();
    let sender = match &c.subject {
        Subject::Account(a) => a.as_str(),
        _ => "",
    };
    let (_, eff) = relay.effective(c.tenant, sender).await;
    let kind = if c.limit == outguard_policy::LimitKind::BounceRate {
        AlertKind::SuspiciousSendingPattern
    } else {
        AlertKind::ComplaintRateExceeded
    };
    let alerted = alerted_today(relay, kind, c.tenant, &c.subject, now).await;
    for action in rate_actions(c, &history, alerted, eff.spam_action, now) {
        relay.take_action(action, &eff).await;
    }
}

/// One alert of a kind per subject per UTC day is enough (every later complaint
/// would otherwise raise another).
pub(crate) async fn alerted_today(
    relay: &Relay,
    kind: AlertKind,
    tenant: &str,
    subject: &Subject,
    now: Millis,
) -> bool {
    let recent = relay.store.list_alerts(Some(tenant), Some(kind), 200).await;
    recent.is_ok_and(|list| {
        list.iter().any(|a| {
            a.alert.created_at >= utc_day_start(now)
                && a.alert.subject.as_ref().is_some_and(|s| s.same(subject))
        })
    })
}
