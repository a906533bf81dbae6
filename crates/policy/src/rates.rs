//! Complaint and hard-bounce rates per account and tenant (SPEC §4) as pure decisions: the
//! thresholds that apply to an event ([`RateRule::for_event`]), how a rate compares with them
//! ([`judge`]), and what a judgement calls for ([`rate_actions`]): crossing the alert rate
//! raises `complaint_rate_exceeded` (a hard-bounce rate: `suspicious_sending_pattern`), once a
//! UTC day per subject; crossing the restrict rate also restricts the account with the
//! policy's spam action. Tenants are alerted, not restricted: blocking a whole organisation on
//! complaints is left to an operator. Counting and the store are the relay's (`fbl::rates`).

use outguard_types::config::FblConfig;
use outguard_types::model::Millis;
use outguard_types::policy::ThresholdAction;

use crate::decide::Action;
use crate::reply::Measure;
use crate::restriction::{LimitKind, Restriction, RestrictionReason, Subject, active_for};
use crate::{Alert, AlertKind};

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

/// The thresholds for one kind of event (`COMPLAINT` or `HARD_BOUNCE`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRule {
    pub alert_at: f64,
    pub restrict_at: f64,
    pub min: u64,
    pub limit: LimitKind,
}

impl RateRule {
    pub fn for_event(cfg: &FblConfig, what: &str) -> RateRule {
        if what == HARD_BOUNCE {
            RateRule {
                alert_at: cfg.bounce_rate,
                restrict_at: if cfg.bounce_restrict {
                    cfg.bounce_rate
                } else {
                    f64::INFINITY
                },
                min: cfg.min_messages,
                limit: LimitKind::BounceRate,
            }
        } else {
            RateRule {
                alert_at: cfg.complaint_alert_rate,
                restrict_at: cfg.complaint_restrict_rate,
                min: cfg.min_messages,
                limit: LimitKind::ComplaintRate,
            }
        }
    }

    /// The judgement of `events` out of `sent` for `subject`: a tenant is never restricted.
    pub fn judge(&self, subject: &Subject, events: u64, sent: u64) -> Judgement {
        match (
            judge(events, sent, self.min, self.alert_at, self.restrict_at),
            subject,
        ) {
            (Judgement::Restrict { rate }, Subject::Tenant(_)) => Judgement::Alert { rate },
            (j, _) => j,
        }
    }
}

/// One judged rate of one subject.
#[derive(Debug, Clone)]
pub struct RateCrossing<'a> {
    pub subject: Subject,
    pub tenant: &'a str,
    pub events: u64,
    pub sent: u64,
    pub judgement: Judgement,
    pub limit: LimitKind,
}

/// What a judged rate calls for, given the restrictions of today (`history`), whether the same
/// alert was already raised today (`alerted_today`) and the policy's spam action.
pub fn rate_actions(
    c: &RateCrossing<'_>,
    history: &[Restriction],
    alerted_today: bool,
    spam_action: ThresholdAction,
    now: Millis,
) -> Vec<Action> {
    let rate = match c.judgement {
        Judgement::Alert { rate } | Judgement::Restrict { rate } => rate,
        Judgement::TooFew | Judgement::Below => return Vec::new(),
    };
    if active_for(history, &c.subject, now).is_some() {
        return Vec::new(); // already restricted: nothing new to say
    }
    let bounces = c.limit == LimitKind::BounceRate;
    let what = if bounces {
        "hard bounces"
    } else {
        "complaints"
    };
    let measures = vec![Measure::new(
        format!("{what} among delivered recipients"),
        c.events,
        c.sent,
    )];
    let mut actions = Vec::new();
    if !alerted_today {
        // Bounce rates have no alert kind of their own in SPEC §3: a sending pattern it is.
        let kind = if bounces {
            AlertKind::SuspiciousSendingPattern
        } else {
            AlertKind::ComplaintRateExceeded
        };
        let summary = format!(
            "{}: {} {what} for {} delivered recipients ({:.2} %)",
            c.subject.id(),
            c.events,
            c.sent,
            rate * 100.0
        );
        let alert = Alert::new(
            kind,
            Some(c.tenant),
            Some(c.subject.clone()),
            summary,
            measures.clone(),
            now,
        );
        actions.push(Action::Alert { alert });
    }
    let exempt = crate::restriction::exempt_today(history, &c.subject, now).contains(&c.limit);
    if let (Judgement::Restrict { .. }, Subject::Account(_), false) =
        (c.judgement, &c.subject, exempt)
    {
        let reason = RestrictionReason::new(c.limit, measures);
        if let Some(restriction) =
            Restriction::for_action(spam_action, c.subject.clone(), c.tenant, reason, now)
        {
            actions.push(Action::Restrict { restriction });
        }
    }
    actions
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

    fn crossing(subject: Subject, judgement: Judgement) -> RateCrossing<'static> {
        RateCrossing {
            subject,
            tenant: "a",
            events: 3,
            sent: 1000,
            judgement,
            limit: LimitKind::ComplaintRate,
        }
    }

    #[test]
    fn a_tenant_is_alerted_never_restricted() {
        let rule = RateRule::for_event(&FblConfig::default(), COMPLAINT);
        let t = Subject::Tenant("a".into());
        assert!(matches!(rule.judge(&t, 100, 1000), Judgement::Alert { .. }));
        let acct = Subject::Account("bob@a.example".into());
        assert!(matches!(
            rule.judge(&acct, 100, 1000),
            Judgement::Restrict { .. }
        ));
    }

    #[test]
    fn restrict_rate_alerts_once_a_day_and_restricts_the_account() {
        let bob = Subject::Account("bob@a.example".into());
        let c = crossing(bob.clone(), Judgement::Restrict { rate: 0.003 });
        let a = rate_actions(&c, &[], false, ThresholdAction::BlockUser, 1_000);
        assert!(
            matches!(&a[..], [Action::Alert { alert }, Action::Restrict { .. }]
            if alert.kind == AlertKind::ComplaintRateExceeded)
        );
        let a = rate_actions(&c, &[], true, ThresholdAction::BlockUser, 1_000);
        assert!(matches!(&a[..], [Action::Restrict { .. }]), "{a:?}");
        // With the `alert` action there is nothing to restrict.
        let a = rate_actions(&c, &[], true, ThresholdAction::Alert, 1_000);
        assert!(a.is_empty(), "{a:?}");
        let below = crossing(bob, Judgement::Below);
        assert!(rate_actions(&below, &[], false, ThresholdAction::BlockUser, 1_000).is_empty());
    }
}
