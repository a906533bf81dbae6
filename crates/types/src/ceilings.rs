//! The operator's `[policy.ceilings]` (SPEC §9 "Policy values"): the highest value a tenant
//! admin may give each numeric policy key, and the keys only an operator may set at all.
//!
//! Why: a tenant's policy is the tenant's to tighten, not to lift past what the service can
//! carry — `tenant_spam_messages_per_hour = 1000000` turned the service's own safety net off.
//! The defaults are the service's hard limits, so an operator who writes nothing loses nothing.
//! A value of `0` ("the service default") is always allowed; a value equal to the one already
//! stored is allowed too, so a tenant admin re-saving a policy the operator tuned above the
//! ceiling is not refused for the operator's choice.

use serde::{Deserialize, Serialize};

use crate::policy::{BulkAction, MAX_RECIPIENT_LIMIT, PolicySettings};

/// Keys a tenant admin may not change: they protect the service, not the tenant.
pub const OPERATOR_ONLY_KEYS: &[&str] = &["tenant_spam_messages_per_hour", "max_unblocks_per_day"];

/// Upper bound of `spam_messages_per_hour` (the same 0–10,000 range as the recipient keys).
pub const MAX_SPAM_MESSAGES_PER_HOUR: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyCeilings {
    /// Highest `recipient_limit_external_per_hour` a tenant admin may set (default 10,000).
    pub recipient_limit_external_per_hour: u32,
    /// Highest `recipient_limit_internal_per_hour` (default 10,000).
    pub recipient_limit_internal_per_hour: u32,
    /// Highest `recipient_limit_per_day` (default 10,000, the service's daily ceiling).
    pub recipient_limit_per_day: u32,
    /// Highest `spam_messages_per_hour` (default 10,000).
    pub spam_messages_per_hour: u32,
    /// Highest `spam_ratio` (default 1.0).
    pub spam_ratio: f64,
    /// Highest `reject_score` (unset: no ceiling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_score: Option<f64>,
    /// The mildest action a tenant admin may give a `bulk_*_action` key (`warn`, `high-risk`,
    /// `reject`; default `warn`: any). Lets an operator who rejects non-compliant bulk mail
    /// keep tenants from turning that into a warning.
    pub bulk_min_action: BulkAction,
}

impl Default for PolicyCeilings {
    fn default() -> Self {
        PolicyCeilings {
            recipient_limit_external_per_hour: MAX_RECIPIENT_LIMIT,
            recipient_limit_internal_per_hour: MAX_RECIPIENT_LIMIT,
            recipient_limit_per_day: MAX_RECIPIENT_LIMIT,
            spam_messages_per_hour: MAX_SPAM_MESSAGES_PER_HOUR,
            spam_ratio: 1.0,
            reject_score: None,
            bulk_min_action: BulkAction::Warn,
        }
    }
}

fn above<T: PartialOrd + Copy + std::fmt::Display + Default>(
    key: &str,
    next: Option<T>,
    current: Option<T>,
    ceiling: T,
) -> Result<(), String> {
    match next {
        Some(v) if v > ceiling && v != T::default() && next != current => Err(format!(
            "{key}: {v} is above the operator's ceiling of {ceiling} ([policy.ceilings] {key})"
        )),
        _ => Ok(()),
    }
}

impl PolicyCeilings {
    /// The ceilings themselves lie within the keys' own ranges (check-config names the key):
    /// the first problem of `problems`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self.problems().into_iter().next() {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// Every ceiling outside its key's range, as (`policy.ceilings.KEY`, why).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, v, max) in [
            (
                "recipient_limit_external_per_hour",
                self.recipient_limit_external_per_hour,
                MAX_RECIPIENT_LIMIT,
            ),
            (
                "recipient_limit_internal_per_hour",
                self.recipient_limit_internal_per_hour,
                MAX_RECIPIENT_LIMIT,
            ),
            (
                "recipient_limit_per_day",
                self.recipient_limit_per_day,
                MAX_RECIPIENT_LIMIT,
            ),
            (
                "spam_messages_per_hour",
                self.spam_messages_per_hour,
                MAX_SPAM_MESSAGES_PER_HOUR,
            ),
        ] {
            if v > max {
                out.push((
                    format!("policy.ceilings.{key}"),
                    format!("{v} is outside 0–{max}"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.spam_ratio) {
            out.push((
                "policy.ceilings.spam_ratio".into(),
                format!("{} is outside 0–1", self.spam_ratio),
            ));
        }
        if let Some(s) = self.reject_score
            && !s.is_finite()
        {
            out.push((
                "policy.ceilings.reject_score".into(),
                format!("{s} is not a finite number"),
            ));
        }
        out
    }

    /// A tenant admin's `next` settings against the ceilings; `current` is what is stored now
    /// (a value left as it is passes). The message names the key and the ceiling.
    pub fn check(&self, next: &PolicySettings, current: &PolicySettings) -> Result<(), String> {
        above(
            "recipient_limit_external_per_hour",
            next.recipient_limit_external_per_hour,
            current.recipient_limit_external_per_hour,
            self.recipient_limit_external_per_hour,
        )?;
        above(
            "recipient_limit_internal_per_hour",
            next.recipient_limit_internal_per_hour,
            current.recipient_limit_internal_per_hour,
            self.recipient_limit_internal_per_hour,
        )?;
        above(
            "recipient_limit_per_day",
            next.recipient_limit_per_day,
            current.recipient_limit_per_day,
            self.recipient_limit_per_day,
        )?;
        above(
            "spam_messages_per_hour",
            next.spam_messages_per_hour,
            current.spam_messages_per_hour,
            self.spam_messages_per_hour,
        )?;
        above(
            "spam_ratio",
            next.spam_ratio,
            current.spam_ratio,
            self.spam_ratio,
        )?;
        if let Some(c) = self.reject_score {
            above("reject_score", next.reject_score, current.reject_score, c)?;
        }
        for (key, v, was) in [
            (
                "bulk_dkim_action",
                next.bulk_dkim_action,
                current.bulk_dkim_action,
            ),
            (
                "bulk_spf_action",
                next.bulk_spf_action,
                current.bulk_spf_action,
            ),
            (
                "bulk_dmarc_action",
                next.bulk_dmarc_action,
                current.bulk_dmarc_action,
            ),
            (
                "bulk_unsubscribe_action",
                next.bulk_unsubscribe_action,
                current.bulk_unsubscribe_action,
            ),
        ] {
            if let Some(a) = v
                && a < self.bulk_min_action
                && v != was
            {
                return Err(format!(
                    "{key}: `{}` is milder than the operator's minimum `{}` ([policy.ceilings] bulk_min_action)",
                    a.as_str(),
                    self.bulk_min_action.as_str()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_table() {
        let c = PolicyCeilings {
            recipient_limit_per_day: 2000,
            spam_ratio: 0.6,
            reject_score: Some(20.0),
            ..Default::default()
        };
        c.validate().unwrap();
        let none = PolicySettings::default();
        let set = |k: &str, v: &str| {
            let mut s = PolicySettings::default();
            s.set_key(k, v).unwrap();
            s
        };
        let cases: &[(&str, &str, bool)] = &[
            ("recipient_limit_per_day", "2000", true),
            ("recipient_limit_per_day", "2001", false),
            ("recipient_limit_per_day", "0", true),
            ("recipient_limit_external_per_hour", "10000", true),
            ("spam_ratio", "0.6", true),
            ("spam_ratio", "0.61", false),
            ("reject_score", "20", true),
            ("reject_score", "25", false),
            ("spam_messages_per_hour", "10000", true),
            ("bulk_dmarc_action", "warn", true),
        ];
        for (k, v, ok) in cases {
            let r = c.check(&set(k, v), &none);
            assert_eq!(r.is_ok(), *ok, "{k}={v}: {r:?}");
            if let Err(e) = r {
                assert!(e.contains(k) && e.contains("ceiling"), "{e}");
            }
        }
        let tuned = set("recipient_limit_per_day", "5000");
        assert!(
            c.check(&tuned, &tuned).is_ok(),
            "a value kept as stored passes"
        );
        assert!(
            PolicyCeilings::default()
                .check(&set("reject_score", "1000"), &none)
                .is_ok(),
            "no reject_score ceiling by default"
        );
        let bad = PolicyCeilings {
            spam_ratio: 2.0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "policy.ceilings.spam_ratio");
    }

    /// A tenant admin may make a bulk check stricter, never milder than `bulk_min_action`.
    #[test]
    fn bulk_actions_have_a_floor() {
        let c = PolicyCeilings {
            bulk_min_action: BulkAction::HighRisk,
            ..Default::default()
        };
        let none = PolicySettings::default();
        let set = |k: &str, v: &str| {
            let mut s = PolicySettings::default();
            s.set_key(k, v).unwrap();
            s
        };
        assert!(c.check(&set("bulk_dmarc_action", "reject"), &none).is_ok());
        assert!(
            c.check(&set("bulk_dmarc_action", "high-risk"), &none)
                .is_ok()
        );
        let e = c
            .check(&set("bulk_unsubscribe_action", "warn"), &none)
            .unwrap_err();
        assert!(
            e.contains("bulk_unsubscribe_action") && e.contains("bulk_min_action"),
            "{e}"
        );
        let kept = set("bulk_spf_action", "warn");
        assert!(
            c.check(&kept, &kept).is_ok(),
            "a value kept as stored passes"
        );
        let parsed: PolicyCeilings = toml::from_str("bulk_min_action = \"reject\"\n").unwrap();
        assert_eq!(parsed.bulk_min_action, BulkAction::Reject);
        assert!(toml::from_str::<PolicyCeilings>("bulk_min_action = \"never\"\n").is_err());
    }
}
