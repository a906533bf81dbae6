//! Alert kinds of SPEC §3 and their per-tenant daily notification caps. Every alert is
//! recorded; the cap only limits how many emails/webhooks one tenant gets per UTC day for one
//! kind, so a runaway account cannot flood its admins.

use std::collections::HashMap;

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::reply::Measure;
use crate::restriction::{Subject, utc_day_start};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    UserRestricted,
    /// A limit with action `alert` was reached (mail keeps flowing).
    SendingLimitExceeded,
    SuspiciousSendingPattern,
    TenantRestricted,
    IpListed,
    IpDelisted,
    ComplaintRateExceeded,
    /// Near-identical mail from several accounts, one called spam (issue 19): the operator's.
    CampaignDetected,
    /// An account logged in from more networks than a person does (issue 25).
    SuspiciousLoginPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

pub const ALERT_KINDS: [AlertKind; 9] = [
    AlertKind::UserRestricted,
    AlertKind::SendingLimitExceeded,
    AlertKind::SuspiciousSendingPattern,
    AlertKind::TenantRestricted,
    AlertKind::IpListed,
    AlertKind::IpDelisted,
    AlertKind::ComplaintRateExceeded,
    AlertKind::CampaignDetected,
    AlertKind::SuspiciousLoginPattern,
];

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::UserRestricted => "user_restricted",
            AlertKind::SendingLimitExceeded => "sending_limit_exceeded",
            AlertKind::SuspiciousSendingPattern => "suspicious_sending_pattern",
            AlertKind::TenantRestricted => "tenant_restricted",
            AlertKind::IpListed => "ip_listed",
            AlertKind::IpDelisted => "ip_delisted",
            AlertKind::ComplaintRateExceeded => "complaint_rate_exceeded",
            AlertKind::CampaignDetected => "campaign_detected",
            AlertKind::SuspiciousLoginPattern => "suspicious_login_pattern",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        ALERT_KINDS.into_iter().find(|k| k.as_str() == s)
    }

    pub fn severity(self) -> Severity {
        match self {
            AlertKind::UserRestricted
            | AlertKind::TenantRestricted
            | AlertKind::IpListed
            | AlertKind::CampaignDetected
            | AlertKind::SuspiciousLoginPattern => Severity::High,
            AlertKind::SuspiciousSendingPattern | AlertKind::ComplaintRateExceeded => {
                Severity::Medium
            }
            AlertKind::SendingLimitExceeded => Severity::Medium,
            AlertKind::IpDelisted => Severity::Low,
        }
    }

    /// Notifications per tenant (or, for `ip_*`, per service) per UTC day.
    pub fn daily_cap(self) -> u32 {
        match self {
            AlertKind::UserRestricted => 50,
            AlertKind::SendingLimitExceeded => 20,
            AlertKind::SuspiciousSendingPattern => 20,
            AlertKind::TenantRestricted => 5,
            AlertKind::IpListed | AlertKind::IpDelisted => 50,
            AlertKind::ComplaintRateExceeded => 10,
            AlertKind::CampaignDetected => 20,
            AlertKind::SuspiciousLoginPattern => 20,
        }
    }

    /// `ip_listed` / `ip_delisted` / `campaign_detected` concern the service, not a tenant (a
    /// campaign spans tenants): they go to the operator.
    pub fn is_service_wide(self) -> bool {
        matches!(
            self,
            AlertKind::IpListed | AlertKind::IpDelisted | AlertKind::CampaignDetected
        )
    }
}

/// An alert record (kept in the store, shown by `outguard alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    /// None for service-wide alerts.
    pub tenant: Option<String>,
    pub subject: Option<Subject>,
    pub summary: String,
    pub measures: Vec<Measure>,
    pub created_at: Millis,
}

impl Alert {
    pub fn new(
        kind: AlertKind,
        tenant: Option<&str>,
        subject: Option<Subject>,
        summary: String,
        measures: Vec<Measure>,
        now: Millis,
    ) -> Alert {
        Alert {
            kind,
            severity: kind.severity(),
            tenant: tenant.map(str::to_string),
            subject,
            summary,
            measures,
            created_at: now,
        }
    }
}

/// The cluster-wide identity of an alert: kind, subject, cause and UTC day. Every node that
/// sees the same thing (the same pool IP listed by the same zone, the same account over the same
/// rate) builds the same key; the store keeps the first alert with a key and only the node that
/// stored it notifies, so an alert is recorded, mailed and webhooked once per cluster per day.
pub fn dedup_key(kind: AlertKind, subject: &str, cause: &str, now: Millis) -> String {
    format!(
        "{}|{}|{}|{}",
        kind.as_str(),
        subject.to_ascii_lowercase(),
        cause,
        utc_day_start(now).div_euclid(24 * 3600 * 1000)
    )
}

impl Alert {
    /// [`dedup_key`] of a tenant alert: its subject (kind and id, within the tenant) and, as
    /// the cause, what its first measure counts (the limit or rate that was crossed).
    pub fn dedup_key(&self) -> String {
        let subject = match &self.subject {
            Some(Subject::Account(a)) => format!("account:{a}"),
            Some(Subject::Connector(c)) => format!("connector:{c}"),
            Some(Subject::Tenant(t)) => format!("tenant:{t}"),
            None => String::new(),
        };
        let subject = format!("{}/{subject}", self.tenant.as_deref().unwrap_or(""));
        let cause = self.measures.first().map_or("", |m| m.what.as_str());
        dedup_key(self.kind, &subject, cause, self.created_at)
    }
}

/// Whether one more notification of `kind` may go out when `sent_today` already did.
pub fn within_cap(kind: AlertKind, sent_today: u32) -> bool {
    sent_today < kind.daily_cap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapDecision {
    /// Send it; this is the `nth` today.
    Notify { nth: u32 },
    /// Record only; `cap` already sent today.
    Suppress { cap: u32 },
}

/// In-process cap bookkeeping: per (tenant, kind) the UTC day and how many went out.
/// (The server can rebuild it from the day's alert records after a restart.)
#[derive(Debug, Default)]
pub struct AlertCap {
    sent: HashMap<(String, AlertKind), (Millis, u32)>,
}

impl AlertCap {
    pub fn new() -> AlertCap {
        AlertCap::default()
    }

    /// Seed with what was already sent today (from the store).
    pub fn seed(&mut self, tenant: &str, kind: AlertKind, sent_today: u32, now: Millis) {
        self.sent
            .insert((tenant.to_string(), kind), (utc_day_start(now), sent_today));
    }

    /// `tenant` is `""` for service-wide alerts.
    pub fn admit(&mut self, tenant: &str, kind: AlertKind, now: Millis) -> CapDecision {
        let day = utc_day_start(now);
        let entry = self
            .sent
            .entry((tenant.to_string(), kind))
            .or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        if within_cap(kind, entry.1) {
            entry.1 += 1;
            CapDecision::Notify { nth: entry.1 }
        } else {
            CapDecision::Suppress {
                cap: kind.daily_cap(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::DAY_MS;

    #[test]
    fn kinds_round_trip() {
        for k in ALERT_KINDS {
            assert_eq!(AlertKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert_eq!(AlertKind::UserRestricted.severity(), Severity::High);
        assert!(
            AlertKind::IpListed.is_service_wide() && !AlertKind::UserRestricted.is_service_wide()
        );
    }

    #[test]
    fn dedup_keys_per_kind_subject_cause_and_day() {
        let now = 10 * DAY_MS + 5;
        let k = |kind, s: &str, c: &str, t| dedup_key(kind, s, c, t);
        assert_eq!(
            k(AlertKind::IpListed, "127.0.0.2", "bl.test", now),
            k(AlertKind::IpListed, "127.0.0.2", "bl.test", now + 3_600_000),
            "same day"
        );
        assert_ne!(
            k(AlertKind::IpListed, "127.0.0.2", "bl.test", now),
            k(AlertKind::IpListed, "127.0.0.2", "bl.test", 11 * DAY_MS)
        );
        assert_ne!(
            k(AlertKind::IpListed, "127.0.0.2", "bl.test", now),
            k(AlertKind::IpListed, "127.0.0.2", "zen.test", now)
        );
        assert_ne!(
            k(AlertKind::IpListed, "127.0.0.2", "bl.test", now),
            k(AlertKind::IpDelisted, "127.0.0.2", "bl.test", now)
        );
        let a = |who: &str, what: &str| {
            Alert::new(
                AlertKind::ComplaintRateExceeded,
                Some("acme"),
                Some(Subject::Account(who.into())),
                format!("{who} summary differs"),
                vec![Measure::new(what, 3, 10)],
                now,
            )
        };
        assert_eq!(
            a("Bob@x", "complaints").dedup_key(),
            a("bob@x", "complaints").dedup_key()
        );
        assert_ne!(
            a("bob@x", "complaints").dedup_key(),
            a("eve@x", "complaints").dedup_key()
        );
        assert_ne!(
            a("bob@x", "complaints").dedup_key(),
            a("bob@x", "bounces").dedup_key()
        );
    }

    #[test]
    fn caps_per_tenant_kind_and_day() {
        let mut caps = AlertCap::new();
        let now = 10 * DAY_MS + 5;
        let cap = AlertKind::TenantRestricted.daily_cap();
        for i in 1..=cap {
            assert_eq!(
                caps.admit("a", AlertKind::TenantRestricted, now),
                CapDecision::Notify { nth: i }
            );
        }
        assert_eq!(
            caps.admit("a", AlertKind::TenantRestricted, now + 1),
            CapDecision::Suppress { cap }
        );
        assert_eq!(
            caps.admit("b", AlertKind::TenantRestricted, now),
            CapDecision::Notify { nth: 1 },
            "per tenant"
        );
        assert_eq!(
            caps.admit("a", AlertKind::UserRestricted, now),
            CapDecision::Notify { nth: 1 },
            "per kind"
        );
        assert_eq!(
            caps.admit("a", AlertKind::TenantRestricted, 11 * DAY_MS),
            CapDecision::Notify { nth: 1 },
            "new day"
        );
        caps.seed("c", AlertKind::SendingLimitExceeded, 20, now);
        assert!(matches!(
            caps.admit("c", AlertKind::SendingLimitExceeded, now),
            CapDecision::Suppress { .. }
        ));
        assert!(
            within_cap(AlertKind::UserRestricted, 0) && !within_cap(AlertKind::UserRestricted, 50)
        );
    }
}
