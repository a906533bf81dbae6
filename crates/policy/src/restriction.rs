//! Restrictions (SPEC §3): who is blocked, why, until when, and who lifted it — plus the pure
//! lift rules: at most `max_unblocks_per_day` lifts per subject per UTC day, a subject lifted
//! today is not restricted again by the same limit that day, tenant restrictions are lifted by
//! operators only.

use outguard_types::model::{Millis, Role};
use outguard_types::policy::ThresholdAction;
use serde::{Deserialize, Serialize};

use crate::counters::DAY_MS;
use crate::reply::{Measure, Reject};

/// Which limit a decision or restriction is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    ExternalPerHour,
    InternalPerHour,
    PerDay,
    /// The service's 10,000 recipients per 24 h per account.
    DailyCeiling,
    MessagesPerMinute,
    ConnectorPerHour,
    SpamPerHour,
    SpamRatio,
    TenantSpamPerHour,
    /// Put in place by hand (an operator or admin).
    Manual,
    /// Feedback-loop complaints over the configured share of delivered mail.
    ComplaintRate,
    /// Hard bounces over the configured share of delivered mail.
    BounceRate,
    /// A tenant's connectors sent more than `unregistered_domain_messages_per_hour` messages
    /// from domains the tenant has not registered (SPEC §9): `5.7.750`, operator lift only.
    UnregisteredDomain,
    /// AUTH successes from more networks than a person uses (issue 25, `[login_behaviour]`).
    LoginPattern,
    /// Mailbox providers deferred its mail saying the sender is the problem (issue 25,
    /// `[provider_deferrals]`).
    ProviderDeferrals,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::ExternalPerHour => "external_per_hour",
            LimitKind::InternalPerHour => "internal_per_hour",
            LimitKind::PerDay => "per_day",
            LimitKind::DailyCeiling => "daily_ceiling",
            LimitKind::MessagesPerMinute => "messages_per_minute",
            LimitKind::ConnectorPerHour => "connector_per_hour",
            LimitKind::SpamPerHour => "spam_per_hour",
            LimitKind::SpamRatio => "spam_ratio",
            LimitKind::TenantSpamPerHour => "tenant_spam_per_hour",
            LimitKind::Manual => "manual",
            LimitKind::ComplaintRate => "complaint_rate",
            LimitKind::BounceRate => "bounce_rate",
            LimitKind::UnregisteredDomain => "unregistered_domain",
            LimitKind::LoginPattern => "login_pattern",
            LimitKind::ProviderDeferrals => "provider_deferrals",
        }
    }

    /// The sentence the notification email and UI use.
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::ExternalPerHour => "the limit of external recipients per hour",
            LimitKind::InternalPerHour => "the limit of internal recipients per hour",
            LimitKind::PerDay => "the daily limit of recipients",
            LimitKind::DailyCeiling => "the service limit of 10,000 recipients per 24 hours",
            LimitKind::MessagesPerMinute => "the limit of messages per minute",
            LimitKind::ConnectorPerHour => "the connector's limit of recipients per hour",
            LimitKind::SpamPerHour => "the limit of spam messages per hour",
            LimitKind::SpamRatio => "the share of spam among its recent messages",
            LimitKind::TenantSpamPerHour => "the organisation's limit of spam messages per hour",
            LimitKind::Manual => "a manual restriction",
            LimitKind::ComplaintRate => "the limit of recipient complaints (feedback loops)",
            LimitKind::BounceRate => "the limit of hard bounces",
            LimitKind::UnregisteredDomain => {
                "the organisation's limit of messages from unregistered domains per hour"
            }
            LimitKind::LoginPattern => "the limit of networks an account logs in from",
            LimitKind::ProviderDeferrals => {
                "the limit of mailbox provider deferrals that blame the sender"
            }
        }
    }

    /// The RCPT refusal for a recipient limit (hourly → 5.2.2, daily → 5.1.90).
    pub fn recipient_reject(self) -> Reject {
        match self {
            LimitKind::PerDay | LimitKind::DailyCeiling => Reject::daily_limit(),
            _ => Reject::hourly_limit(),
        }
    }
}

/// What is restricted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Subject {
    /// An AUTH account, by address.
    Account(String),
    /// A connector, by its CIDR.
    Connector(String),
    /// A whole tenant, by name.
    Tenant(String),
}

impl Subject {
    pub fn id(&self) -> &str {
        match self {
            Subject::Account(a) | Subject::Connector(a) | Subject::Tenant(a) => a,
        }
    }

    /// Same subject (addresses compare case-insensitively).
    pub fn same(&self, other: &Subject) -> bool {
        match (self, other) {
            (Subject::Account(a), Subject::Account(b)) => a.eq_ignore_ascii_case(b),
            (Subject::Connector(a), Subject::Connector(b)) => a == b,
            (Subject::Tenant(a), Subject::Tenant(b)) => a == b,
            _ => false,
        }
    }

    /// The MAIL refusal while this subject is restricted.
    pub fn reject(&self) -> Reject {
        match self {
            Subject::Account(_) => Reject::account_restricted(),
            Subject::Connector(_) => Reject::connector_restricted(),
            Subject::Tenant(_) => Reject::tenant_restricted(),
        }
    }
}

/// Why a subject was restricted: the limit, the numbers, and for spam limits the strongest
/// spam reasons and some message ids to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestrictionReason {
    pub limit: LimitKind,
    pub counts: Vec<Measure>,
    #[serde(default)]
    pub top_spam_reasons: Vec<String>,
    #[serde(default)]
    pub sample_message_ids: Vec<String>,
}

impl RestrictionReason {
    pub fn new(limit: LimitKind, counts: Vec<Measure>) -> RestrictionReason {
        RestrictionReason {
            limit,
            counts,
            top_spam_reasons: Vec::new(),
            sample_message_ids: Vec::new(),
        }
    }
}

/// Who lifted a restriction, when and why (the audit record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lift {
    pub by: String,
    pub at: Millis,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restriction {
    pub subject: Subject,
    pub tenant: String,
    pub reason: RestrictionReason,
    pub created_at: Millis,
    /// None: until lifted. `block_user_for_today`: the next 00:00 UTC.
    pub until: Option<Millis>,
    pub lifted: Option<Lift>,
}

/// Start of the UTC day holding `now`.
pub fn utc_day_start(now: Millis) -> Millis {
    now.div_euclid(DAY_MS) * DAY_MS
}

/// The next 00:00 UTC strictly after `now`.
pub fn next_utc_midnight(now: Millis) -> Millis {
    utc_day_start(now) + DAY_MS
}

impl Restriction {
    /// The restriction an action calls for; None for `alert` (no restriction).
    pub fn for_action(
        action: ThresholdAction,
        subject: Subject,
        tenant: &str,
        reason: RestrictionReason,
        now: Millis,
    ) -> Option<Restriction> {
        let until = match action {
            ThresholdAction::Alert => return None,
            ThresholdAction::BlockUserForToday => Some(next_utc_midnight(now)),
            ThresholdAction::BlockUser => None,
        };
        Some(Restriction {
            subject,
            tenant: tenant.to_string(),
            reason,
            created_at: now,
            until,
            lifted: None,
        })
    }

    /// A tenant blocked as a whole: until an operator lifts it.
    pub fn tenant(tenant: &str, reason: RestrictionReason, now: Millis) -> Restriction {
        Restriction {
            subject: Subject::Tenant(tenant.to_string()),
            tenant: tenant.to_string(),
            reason,
            created_at: now,
            until: None,
            lifted: None,
        }
    }

    /// The MAIL refusal while this restriction holds: the subject's, except that a tenant
    /// blocked for unregistered domains hears `5.7.750`.
    pub fn reject(&self) -> Reject {
        match self.reason.limit {
            LimitKind::UnregisteredDomain => Reject::unregistered_domains(),
            _ => self.subject.reject(),
        }
    }

    pub fn is_active(&self, now: Millis) -> bool {
        self.lifted.is_none() && self.until.is_none_or(|u| now < u)
    }

    /// Lifted during the UTC day holding `now`.
    pub fn lifted_today(&self, now: Millis) -> bool {
        self.lifted
            .as_ref()
            .is_some_and(|l| utc_day_start(l.at) == utc_day_start(now))
    }
}

/// The first active restriction of `subject` among `history`.
pub fn active_for<'a>(
    history: &'a [Restriction],
    subject: &Subject,
    now: Millis,
) -> Option<&'a Restriction> {
    history
        .iter()
        .find(|r| r.subject.same(subject) && r.is_active(now))
}

/// Limits that must not restrict `subject` again today because a restriction by that limit
/// was lifted today (EOP: "the user won't be restricted again for that day").
pub fn exempt_today(history: &[Restriction], subject: &Subject, now: Millis) -> Vec<LimitKind> {
    let mut v: Vec<LimitKind> = history
        .iter()
        .filter(|r| r.subject.same(subject) && r.lifted_today(now))
        .map(|r| r.reason.limit)
        .collect();
    v.dedup();
    v
}

/// How many times `subject` was lifted during the UTC day holding `now`.
pub fn lifts_today(history: &[Restriction], subject: &Subject, now: Millis) -> u32 {
    history
        .iter()
        .filter(|r| r.subject.same(subject) && r.lifted_today(now))
        .count() as u32
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiftRefused {
    #[error("the restriction is not active")]
    NotActive,
    #[error("a restricted tenant can only be lifted by an operator")]
    OperatorOnly,
    #[error(
        "already lifted {done} times today (max_unblocks_per_day = {max}); an operator can still lift it"
    )]
    TooManyLifts { done: u32, max: u32 },
    #[error("a lift needs a reason")]
    NoReason,
    #[error("a tenant reader cannot lift restrictions")]
    ReadOnly,
}

/// May `role` lift `r` now, given `done_today` earlier lifts of the same subject today? Tenant
/// admins are held to `max_unblocks_per_day`; operators are the escalation path and are not.
pub fn check_lift(
    r: &Restriction,
    role: Role,
    done_today: u32,
    max_unblocks_per_day: u32,
    reason: &str,
    now: Millis,
) -> Result<(), LiftRefused> {
    if !r.is_active(now) {
        return Err(LiftRefused::NotActive);
    }
    if reason.trim().is_empty() {
        return Err(LiftRefused::NoReason);
    }
    match role {
        Role::Operator => Ok(()),
        Role::TenantReader => Err(LiftRefused::ReadOnly),
        Role::TenantAdmin if matches!(r.subject, Subject::Tenant(_)) => {
            Err(LiftRefused::OperatorOnly)
        }
        Role::TenantAdmin if done_today >= max_unblocks_per_day => Err(LiftRefused::TooManyLifts {
            done: done_today,
            max: max_unblocks_per_day,
        }),
        Role::TenantAdmin => Ok(()),
    }
}

/// Lift `r` (after [`check_lift`] said yes): records who, when and why.
pub fn lift(r: &Restriction, by: &str, reason: &str, now: Millis) -> Restriction {
    Restriction {
        lifted: Some(Lift {
            by: by.to_string(),
            at: now,
            reason: reason.trim().to_string(),
        }),
        ..r.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = DAY_MS;
    // 2026-11-23 18:00:00 UTC
    const NOW: Millis = 1_795_456_800_000;

    fn acct(limit: LimitKind) -> Restriction {
        Restriction::for_action(
            ThresholdAction::BlockUserForToday,
            Subject::Account("u@t.example".into()),
            "t",
            RestrictionReason::new(limit, vec![]),
            NOW,
        )
        .unwrap()
    }

    #[test]
    fn midnight_vectors() {
        assert_eq!(next_utc_midnight(0), DAY);
        assert_eq!(next_utc_midnight(DAY - 1), DAY);
        assert_eq!(next_utc_midnight(DAY), 2 * DAY);
        assert_eq!(next_utc_midnight(-1), 0);
        assert_eq!(
            next_utc_midnight(NOW),
            1_795_478_400_000,
            "2026-11-24 00:00 UTC"
        );
    }

    #[test]
    fn actions_make_restrictions() {
        let s = Subject::Account("u@t".into());
        let reason = RestrictionReason::new(LimitKind::PerDay, vec![]);
        assert!(
            Restriction::for_action(ThresholdAction::Alert, s.clone(), "t", reason.clone(), NOW)
                .is_none()
        );
        let today = acct(LimitKind::PerDay);
        assert_eq!(today.until, Some(next_utc_midnight(NOW)));
        assert!(today.is_active(NOW) && today.is_active(next_utc_midnight(NOW) - 1));
        assert!(
            !today.is_active(next_utc_midnight(NOW)),
            "block for today ends at 00:00 UTC"
        );
        let forever =
            Restriction::for_action(ThresholdAction::BlockUser, s, "t", reason, NOW).unwrap();
        assert!(forever.is_active(NOW + 400 * DAY));
    }

    #[test]
    fn lift_rules() {
        let r = acct(LimitKind::ExternalPerHour);
        let subj = r.subject.clone();
        let mut history = vec![];
        for i in 0..3 {
            let done = lifts_today(&history, &subj, NOW + i);
            assert_eq!(
                check_lift(&r, Role::TenantAdmin, done, 3, "fixed", NOW + i),
                Ok(())
            );
            history.push(lift(&r, "admin@t", "fixed", NOW + i));
        }
        let done = lifts_today(&history, &subj, NOW + 10);
        assert_eq!(done, 3);
        assert_eq!(
            check_lift(&r, Role::TenantAdmin, done, 3, "again", NOW + 10),
            Err(LiftRefused::TooManyLifts { done: 3, max: 3 })
        );
        assert_eq!(
            check_lift(&r, Role::Operator, done, 3, "escalated", NOW + 10),
            Ok(())
        );
        assert_eq!(
            check_lift(&r, Role::TenantReader, 0, 3, "x", NOW),
            Err(LiftRefused::ReadOnly)
        );
        assert_eq!(
            check_lift(&r, Role::TenantAdmin, 0, 3, "  ", NOW),
            Err(LiftRefused::NoReason)
        );
        assert_eq!(
            check_lift(&history[0], Role::Operator, 0, 3, "x", NOW),
            Err(LiftRefused::NotActive)
        );
        // The next UTC day the count starts again and the exemption is gone.
        let tomorrow = next_utc_midnight(NOW) + 1;
        assert_eq!(lifts_today(&history, &subj, tomorrow), 0);
        assert!(exempt_today(&history, &subj, tomorrow).is_empty());
        assert_eq!(
            exempt_today(&history, &subj, NOW + 20),
            vec![LimitKind::ExternalPerHour]
        );
        let other = Subject::Account("U@T.EXAMPLE".into());
        assert_eq!(
            lifts_today(&history, &other, NOW + 20),
            3,
            "addresses compare case-insensitively"
        );
    }

    #[test]
    fn tenant_restrictions_need_an_operator() {
        let t = Restriction::tenant(
            "t",
            RestrictionReason::new(LimitKind::TenantSpamPerHour, vec![]),
            NOW,
        );
        assert_eq!(t.until, None);
        assert_eq!(
            check_lift(&t, Role::TenantAdmin, 0, 3, "please", NOW),
            Err(LiftRefused::OperatorOnly)
        );
        assert_eq!(check_lift(&t, Role::Operator, 0, 3, "checked", NOW), Ok(()));
        assert_eq!(t.subject.reject().enhanced, "5.7.705");
        let history = vec![t.clone()];
        assert!(active_for(&history, &Subject::Tenant("t".into()), NOW + 5 * DAY).is_some());
        assert!(active_for(&history, &Subject::Tenant("u".into()), NOW).is_none());
    }
}
