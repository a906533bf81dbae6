//! What a sender signal that crossed its line calls for (issue 25: login behaviour, provider
//! deferrals): one alert of its kind per subject per UTC day, and — for an account, when the
//! operator lets the signal restrict and the subject is neither restricted already nor lifted
//! from this very limit today — a restriction with the policy's spam action (`alert` in the
//! tenant's policy means: alert only). The same shape as the complaint rates
//! ([`crate::rates::rate_actions`]); tenants are alerted, never restricted.

use outguard_types::model::Millis;
use outguard_types::policy::ThresholdAction;

use crate::decide::Action;
use crate::reply::Measure;
use crate::restriction::{
    LimitKind, Restriction, RestrictionReason, Subject, active_for, exempt_today,
};
use crate::{Alert, AlertKind};

/// One crossing: whose, which limit, what it says, the numbers.
#[derive(Debug, Clone)]
pub struct Crossing<'a> {
    pub subject: Subject,
    pub tenant: &'a str,
    pub kind: AlertKind,
    pub limit: LimitKind,
    pub summary: String,
    pub measures: Vec<Measure>,
}

/// The actions for `c`, given today's restrictions (`history`), whether this alert was raised
/// today already, and the spam action when the signal may restrict (None: alert only).
pub fn actions(
    c: &Crossing<'_>,
    history: &[Restriction],
    alerted_today: bool,
    restrict_with: Option<ThresholdAction>,
    now: Millis,
) -> Vec<Action> {
    if active_for(history, &c.subject, now).is_some() {
        return Vec::new(); // already restricted: nothing new to say
    }
    let mut out = Vec::new();
    if !alerted_today {
        out.push(Action::Alert {
            alert: Alert::new(
                c.kind,
                Some(c.tenant),
                Some(c.subject.clone()),
                c.summary.clone(),
                c.measures.clone(),
                now,
            ),
        });
    }
    let exempt = exempt_today(history, &c.subject, now).contains(&c.limit);
    if let (Some(action), Subject::Account(_), false) = (restrict_with, &c.subject, exempt) {
        let reason = RestrictionReason::new(c.limit, c.measures.clone());
        if let Some(restriction) =
            Restriction::for_action(action, c.subject.clone(), c.tenant, reason, now)
        {
            out.push(Action::Restrict { restriction });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crossing(subject: Subject) -> Crossing<'static> {
        Crossing {
            subject,
            tenant: "a",
            kind: AlertKind::SuspiciousLoginPattern,
            limit: LimitKind::LoginPattern,
            summary: "x".into(),
            measures: vec![Measure::new("networks", 20, 20)],
        }
    }

    #[test]
    fn alert_once_restrict_accounts_by_the_policy() {
        let bob = crossing(Subject::Account("bob@a.example".into()));
        let a = actions(&bob, &[], false, Some(ThresholdAction::BlockUser), 1_000);
        assert!(
            matches!(&a[..], [Action::Alert { alert }, Action::Restrict { restriction }]
                if alert.kind == AlertKind::SuspiciousLoginPattern
                && restriction.reason.limit == LimitKind::LoginPattern),
            "{a:?}"
        );
        let a = actions(&bob, &[], true, Some(ThresholdAction::BlockUser), 1_000);
        assert!(matches!(&a[..], [Action::Restrict { .. }]), "{a:?}");
        // The tenant's policy says `alert`, or the operator turned restricting off.
        assert!(actions(&bob, &[], true, Some(ThresholdAction::Alert), 1_000).is_empty());
        assert!(actions(&bob, &[], true, None, 1_000).is_empty());
        // Already restricted: nothing more.
        let Action::Restrict { restriction } =
            actions(&bob, &[], true, Some(ThresholdAction::BlockUser), 1_000).remove(0)
        else {
            unreachable!()
        };
        assert!(
            actions(
                &bob,
                &[restriction],
                false,
                Some(ThresholdAction::BlockUser),
                2_000
            )
            .is_empty()
        );
        // A tenant is alerted, never restricted.
        let t = crossing(Subject::Tenant("a".into()));
        let a = actions(&t, &[], false, Some(ThresholdAction::BlockUser), 1_000);
        assert!(matches!(&a[..], [Action::Alert { .. }]), "{a:?}");
    }
}
