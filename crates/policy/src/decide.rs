//! Shared vocabulary of the decision functions: who is sending ([`SenderRef`]), what the relay
//! must do ([`Action`]), a refusal with its numbers ([`Refusal`]), and the counter keys (one
//! place, so every backend and the trace agree on names).

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, AlertKind};
use crate::reply::{Measure, Reject};
use crate::restriction::{Restriction, RestrictionReason, Subject};

/// Who submitted the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderRef<'a> {
    /// An AUTH account, by address.
    Account(&'a str),
    /// A tenant connector, by CIDR, with its optional `--limit-per-hour`.
    Connector {
        cidr: &'a str,
        limit_per_hour: Option<u32>,
    },
}

impl SenderRef<'_> {
    pub fn subject(&self) -> Subject {
        match self {
            SenderRef::Account(a) => Subject::Account(a.to_ascii_lowercase()),
            SenderRef::Connector { cidr, .. } => Subject::Connector(cidr.to_string()),
        }
    }
}

/// What the relay must do after a decision, besides answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Record this alert (and notify within the daily cap); mail keeps flowing.
    Alert { alert: Alert },
    /// Store this restriction, hold the subject's queued mail, raise `user_restricted` /
    /// `tenant_restricted`, send the notification email.
    Restrict { restriction: Restriction },
}

impl Action {
    /// The alert the relay records for this action.
    pub fn alert(&self) -> Alert {
        match self {
            Action::Alert { alert } => alert.clone(),
            Action::Restrict { restriction: r } => {
                let kind = match r.subject {
                    Subject::Tenant(_) => AlertKind::TenantRestricted,
                    _ => AlertKind::UserRestricted,
                };
                let summary = format!(
                    "{} restricted: reached {}",
                    r.subject.id(),
                    r.reason.limit.describe()
                );
                Alert::new(
                    kind,
                    Some(&r.tenant),
                    Some(r.subject.clone()),
                    summary,
                    r.reason.counts.clone(),
                    r.created_at,
                )
            }
        }
    }
}

/// Build the action a reached limit calls for: a restriction, or an alert of `alert_kind` when
/// the action is `alert` (or the subject is exempt today after a lift).
pub(crate) fn action_for(
    action: outguard_types::policy::ThresholdAction,
    exempt: bool,
    subject: Subject,
    tenant: &str,
    reason: RestrictionReason,
    alert_kind: AlertKind,
    now: Millis,
) -> Action {
    let effective = if exempt {
        outguard_types::policy::ThresholdAction::Alert
    } else {
        action
    };
    match Restriction::for_action(effective, subject.clone(), tenant, reason.clone(), now) {
        Some(restriction) => Action::Restrict { restriction },
        None => {
            let why = if exempt {
                " (lifted earlier today, not restricted again)"
            } else {
                ""
            };
            let summary = format!("{} reached {}{why}", subject.id(), reason.limit.describe());
            Action::Alert {
                alert: Alert::new(
                    alert_kind,
                    Some(tenant),
                    Some(subject),
                    summary,
                    reason.counts,
                    now,
                ),
            }
        }
    }
}

/// The policy for `sender` (SPEC §2.4 step 4): the highest-priority custom policy whose scope
/// matches, else the tenant's default; resolved over the tenant default and the service-wide
/// `[policy.default]`. Returns the policy's name (`"default"` for the tenant default) for the
/// trace.
pub fn effective_for<'a>(
    policies: &'a [outguard_types::policy::Policy],
    tenant_default: &outguard_types::policy::PolicySettings,
    service: &outguard_types::policy::PolicySettings,
    sender: &str,
) -> (&'a str, outguard_types::policy::EffectivePolicy) {
    match outguard_types::policy::select_policy(policies, sender) {
        Some(p) => (p.name.as_str(), p.settings.resolve(tenant_default, service)),
        None => ("default", tenant_default.resolve(tenant_default, service)),
    }
}

/// A refusal and the numbers that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub reject: Reject,
    pub measures: Vec<Measure>,
    /// One line for the trace.
    pub detail: String,
}

/// Counter key names. Addresses are lower-cased so `A@x` and `a@x` share their windows.
pub mod keys {
    pub fn account(addr: &str, what: &str) -> String {
        format!("a:{}:{what}", addr.to_ascii_lowercase())
    }
    pub fn connector(cidr: &str, what: &str) -> String {
        format!("c:{cidr}:{what}")
    }
    pub fn tenant(name: &str, what: &str) -> String {
        format!("t:{name}:{what}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_types::policy::{Policy, PolicyScope, PolicySettings};

    #[test]
    fn effective_for_picks_and_resolves() {
        let vip = Policy {
            name: "vip".into(),
            priority: 0,
            scope: PolicyScope {
                senders: vec!["ceo@t.example".into()],
                ..Default::default()
            },
            settings: PolicySettings {
                recipient_limit_external_per_hour: Some(2000),
                ..Default::default()
            },
        };
        let tenant = PolicySettings {
            recipient_limit_per_day: Some(3000),
            ..Default::default()
        };
        let service = PolicySettings {
            recipient_limit_internal_per_hour: Some(50),
            ..Default::default()
        };
        let policies = [vip];
        let (name, e) = effective_for(&policies, &tenant, &service, "CEO@t.example");
        assert_eq!(
            (name, e.external_per_hour, e.per_day, e.internal_per_hour),
            ("vip", 2000, 3000, 50)
        );
        let (name, e) = effective_for(&policies, &tenant, &service, "staff@t.example");
        assert_eq!(
            (name, e.external_per_hour, e.per_day),
            ("default", 500, 3000)
        );
    }
}
