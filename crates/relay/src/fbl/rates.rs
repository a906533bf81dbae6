//! Complaint (and hard-bounce) rates per account and tenant (SPEC §4): counters over the
//! `[fbl] window` — recipients delivered, complaints, hard bounces — in the same counter store
//! the sending limits use, then judged against the thresholds (defaults: alert at 0.1 %,
//! restrict at 0.3 % of at least 1,000 recipients). Crossing the alert rate raises
//! `complaint_rate_exceeded`; crossing the restrict rate also restricts the account through
//! the policy machinery with the policy's spam action. Tenants are alerted, not restricted:
//! blocking a whole organisation on complaints is left to an operator.

use outguard_policy::decide::keys;
use outguard_policy::restriction::{LimitKind, active_for, exempt_today, utc_day_start};
use outguard_policy::{Action, Alert, AlertKind, Measure, Restriction, RestrictionReason, Subject};
use outguard_types::config::FblConfig;
use outguard_types::model::Millis;

use crate::server::Relay;
use crate::smtp::identity::Identity;

/// Counter names (under `keys::account` / `keys::tenant`).
pub const SENT: &str = "fbl_sent";
pub const COMPLAINT: &str = "complaint";
pub const HARD_BOUNCE: &str = "hard_bounce";

/// How a rate compares with its thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Judgement {
    /// Fewer than the minimum sample: no judgement yet.
    TooFew,
    Below,
    Alert {
        rate: f64,
    },
    Restrict {
        rate: f64,
    },
}

/// `events` out of `sent` against `alert_at` / `restrict_at` (fractions), once `sent >= min`.
pub fn judge(events: u64, sent: u64, min: u64, alert_at: f64, restrict_at: f64) -> Judgement {
    if sent == 0 || sent < min {
        return Judgement::TooFew;
    }
    let rate = events as f64 / sent as f64;
    if rate >= restrict_at {
        Judgement::Restrict { rate }
    } else if rate >= alert_at {
        Judgement::Alert { rate }
    } else {
        Judgement::Below
    }
}

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
    let cfg = &relay.cfg.fbl;
    let (alert_at, restrict_at, limit) = if what == HARD_BOUNCE {
        (
            cfg.bounce_rate,
            if cfg.bounce_restrict {
                cfg.bounce_rate
            } else {
                f64::INFINITY
            },
            LimitKind::BounceRate,
        )
    } else {
        (
            cfg.complaint_alert_rate,
            cfg.complaint_restrict_rate,
            LimitKind::ComplaintRate,
        )
    };
    if let Some(addr) = account
        && let Some((events, sent)) = bump(relay, |w| keys::account(addr, w), what, now).await
    {
        let j = judge(events, sent, cfg.min_messages, alert_at, restrict_at);
        let subject = Subject::Account(addr.to_string());
        act(relay, subject, tenant, (events, sent), j, limit, now).await;
    }
    if let Some((events, sent)) = bump(relay, |w| keys::tenant(tenant, w), what, now).await {
        let j = match judge(events, sent, cfg.min_messages, alert_at, restrict_at) {
            Judgement::Restrict { rate } => Judgement::Alert { rate },
            other => other,
        };
        act(
            relay,
            Subject::Tenant(tenant.to_string()),
            tenant,
            (events, sent),
            j,
            limit,
            now,
        )
        .await;
    }
}

async fn act(
    relay: &Relay,
    subject: Subject,
    tenant: &str,
    (events, sent): (u64, u64),
    j: Judgement,
    limit: LimitKind,
    now: Millis,
) {
    let rate = match j {
        Judgement::Alert { rate } | Judgement::Restrict { rate } => rate,
        Judgement::TooFew | Judgement::Below => return,
    };
    let what = if limit == LimitKind::BounceRate {
        "hard bounces"
    } else {
        "complaints"
    };
    let measures = vec![Measure::new(
        format!("{what} among delivered recipients"),
        events,
        sent,
    )];
    let summary = format!(
        "{}: {events} {what} for {sent} delivered recipients ({:.2} %)",
        subject.id(),
        rate * 100.0
    );
    let history = relay.enforcer.cache.restrictions();
    if active_for(&history, &subject, now).is_some() {
        return; // already restricted: nothing new to say
    }
    let sender = match &subject {
        Subject::Account(a) => a.as_str(),
        _ => "",
    };
    let (_, eff) = relay.effective(tenant, sender).await;
    // Bounce rates have no alert kind of their own in SPEC §3: a sending pattern it is.
    let kind = if limit == LimitKind::BounceRate {
        AlertKind::SuspiciousSendingPattern
    } else {
        AlertKind::ComplaintRateExceeded
    };
    if !alerted_today(relay, kind, tenant, &subject, now).await {
        let alert = Alert::new(
            kind,
            Some(tenant),
            Some(subject.clone()),
            summary,
            measures.clone(),
            now,
        );
        relay.apply_action(Action::Alert { alert }, &eff).await;
    }
    let exempt = exempt_today(&history, &subject, now).contains(&limit);
    if let (Judgement::Restrict { .. }, Subject::Account(_), false) = (j, &subject, exempt) {
        let reason = RestrictionReason::new(limit, measures);
        if let Some(restriction) =
            Restriction::for_action(eff.spam_action, subject, tenant, reason, now)
        {
            relay
                .apply_action(Action::Restrict { restriction }, &eff)
                .await;
        }
    }
}

/// One alert of a kind per subject per UTC day is enough (every later complaint
/// would otherwise raise another).
async fn alerted_today(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgement_vectors() {
        let (a, r) = (0.001, 0.003);
        assert_eq!(judge(5, 999, 1000, a, r), Judgement::TooFew);
        assert_eq!(judge(0, 0, 0, a, r), Judgement::TooFew);
        assert_eq!(judge(0, 1000, 1000, a, r), Judgement::Below);
        assert_eq!(judge(1, 1000, 1000, a, r), Judgement::Alert { rate: 0.001 });
        assert_eq!(judge(2, 1000, 1000, a, r), Judgement::Alert { rate: 0.002 });
        assert_eq!(
            judge(3, 1000, 1000, a, r),
            Judgement::Restrict { rate: 0.003 }
        );
        assert_eq!(
            judge(1, 10, 10, 0.1, f64::INFINITY),
            Judgement::Alert { rate: 0.1 }
        );
    }
}
