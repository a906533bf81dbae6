//! Outbound spam policy settings (SPEC §2.4 and §8 "Policy keys"). Owned by the policy work;
//! this is the shape the config's `[policy.default]`, the store, the API and the CLI share.
//!
//! Three layers give a concrete [`EffectivePolicy`]: the policy that matched the sender (a
//! custom one, or the tenant's default), then the tenant's default, then the service-wide
//! `[policy.default]`, then the built-in service defaults below. An unset key, and a numeric
//! limit of `0`, both mean "ask the next layer" (EOP's "0 = service default").

use serde::{Deserialize, Serialize};

/// Hard ceiling no policy lifts: recipients per account per sliding 24 hours.
pub const DAILY_RECIPIENT_CEILING: u32 = 10_000;
/// Upper bound of the three recipient-limit keys (EOP's 0–10,000).
pub const MAX_RECIPIENT_LIMIT: u32 = 10_000;
/// The spam ratio looks at this many of the account's last messages…
pub const SPAM_RATIO_WINDOW: usize = 20;
/// …and only once at least this many were sent.
pub const SPAM_RATIO_MIN_MESSAGES: u32 = 10;

/// Built-in service defaults (SPEC §2.4).
pub const DEFAULT_EXTERNAL_PER_HOUR: u32 = 500;
pub const DEFAULT_INTERNAL_PER_HOUR: u32 = 1000;
pub const DEFAULT_PER_DAY: u32 = 1000;
pub const DEFAULT_SPAM_MESSAGES_PER_HOUR: u32 = 10;
pub const DEFAULT_SPAM_RATIO: f64 = 0.5;
pub const DEFAULT_TENANT_SPAM_MESSAGES_PER_HOUR: u32 = 200;
pub const DEFAULT_MAX_UNBLOCKS_PER_DAY: u32 = 3;

/// What happens when a limit is reached (EOP's `ActionWhenThresholdReached`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdAction {
    /// Accept, raise an alert only.
    Alert,
    /// Restrict until the next 00:00 UTC.
    BlockUserForToday,
    /// Restrict until an admin lifts it.
    BlockUser,
}

impl ThresholdAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdAction::Alert => "alert",
            ThresholdAction::BlockUserForToday => "block_user_for_today",
            ThresholdAction::BlockUser => "block_user",
        }
    }

    pub fn parse(s: &str) -> Option<ThresholdAction> {
        match s.trim() {
            "alert" => Some(ThresholdAction::Alert),
            "block_user_for_today" => Some(ThresholdAction::BlockUserForToday),
            "block_user" => Some(ThresholdAction::BlockUser),
            _ => None,
        }
    }
}

/// What a bulk stream's failing compliance check does (issue 25 part 4; `crate::config::BulkConfig`).
/// Ordered from the mildest: a stricter action wins when several checks fail.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum BulkAction {
    /// Accept as usual; the failure is in the trace and on the compliance page.
    #[default]
    #[serde(rename = "warn")]
    Warn,
    /// Accept, but deliver from the `high-risk` pool.
    #[serde(rename = "high-risk", alias = "high_risk")]
    HighRisk,
    /// Refuse at DATA with `550 5.7.26` naming the requirement.
    #[serde(rename = "reject")]
    Reject,
}

impl BulkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Warn => "warn",
            BulkAction::HighRisk => "high-risk",
            BulkAction::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<BulkAction> {
        match s.trim() {
            "warn" => Some(BulkAction::Warn),
            "high-risk" | "high_risk" => Some(BulkAction::HighRisk),
            "reject" => Some(BulkAction::Reject),
            _ => None,
        }
    }
}

/// The action of each bulk compliance check, every value concrete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkActions {
    pub dkim: BulkAction,
    pub spf: BulkAction,
    pub dmarc: BulkAction,
    pub unsubscribe: BulkAction,
}

/// Every key optional: an unset key falls back to the tenant default, then the service default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// External recipients per account per sliding hour; 0–10,000, 0 = service default (500).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_limit_external_per_hour: Option<u32>,
    /// Internal recipients per account per sliding hour; 0–10,000, 0 = service default (1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_limit_internal_per_hour: Option<u32>,
    /// All recipients per account per sliding 24 h; 0–10,000, 0 = service default (1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_limit_per_day: Option<u32>,
    /// Default `block_user_for_today`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_when_threshold_reached: Option<ThresholdAction>,
    /// Default `block_user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_when_spam_threshold_reached: Option<ThresholdAction>,
    /// Spam messages per account per sliding hour; 0–10,000, 0 = service default (10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam_messages_per_hour: Option<u32>,
    /// Share of spam among the account's last 20 messages (once ≥ 10 sent); 0–1, 0 = default (0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam_ratio: Option<f64>,
    /// Spam messages per tenant per sliding hour; 0–1,000,000, 0 = service default (200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_spam_messages_per_hour: Option<u32>,
    /// Spam scoring at or above this is refused with `550 5.7.1`; unset = never refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_score: Option<f64>,
    /// Hold spam for admin release instead of delivering it from `high-risk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<bool>,
    /// Send a BCC copy of suspicious/spam messages to `bcc_recipients`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcc_suspicious_outbound_mail: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcc_recipients: Option<Vec<String>>,
    /// Who gets the restriction notification email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_recipients: Option<Vec<String>>,
    /// Lifts per account per UTC day; 0–1,000, 0 = service default (3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unblocks_per_day: Option<u32>,
    /// Bulk stream without a DKIM signature aligned with its From domain. Default `warn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_dkim_action: Option<BulkAction>,
    /// Bulk stream whose envelope domain is not aligned with From or has no SPF record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_spf_action: Option<BulkAction>,
    /// Bulk stream whose From domain publishes no DMARC record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_dmarc_action: Option<BulkAction>,
    /// Bulk stream without RFC 8058 one-click unsubscribe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_unsubscribe_action: Option<BulkAction>,
}

/// Every policy key, in the order `policy show` prints them.
pub const POLICY_KEYS: &[&str] = &[
    "recipient_limit_external_per_hour",
    "recipient_limit_internal_per_hour",
    "recipient_limit_per_day",
    "action_when_threshold_reached",
    "action_when_spam_threshold_reached",
    "spam_messages_per_hour",
    "spam_ratio",
    "tenant_spam_messages_per_hour",
    "reject_score",
    "quarantine",
    "bcc_suspicious_outbound_mail",
    "bcc_recipients",
    "notify_recipients",
    "max_unblocks_per_day",
    "bulk_dkim_action",
    "bulk_spf_action",
    "bulk_dmarc_action",
    "bulk_unsubscribe_action",
];

/// A problem of a policy's settings: the key and what is wrong with it.
pub type KeyProblem = (&'static str, String);

fn check_range(out: &mut Vec<KeyProblem>, key: &'static str, v: Option<u32>, max: u32) {
    if let Some(n) = v
        && n > max
    {
        out.push((key, format!("{n} is outside 0–{max}")));
    }
}

/// `bcc_recipients` and `notify_recipients` hold at most this many addresses (SPEC §9: one
/// spam message must not fan out into thousands of copies).
pub const MAX_ADDRESS_LIST: usize = 10;

fn check_addresses(out: &mut Vec<KeyProblem>, key: &'static str, v: &Option<Vec<String>>) {
    let n = v.as_ref().map_or(0, Vec::len);
    if n > MAX_ADDRESS_LIST {
        out.push((
            key,
            format!("{n} addresses, at most {MAX_ADDRESS_LIST} are allowed"),
        ));
    }
    for a in v.iter().flatten() {
        if let Some(c) = a.chars().find(|c| c.is_control()) {
            out.push((
                key,
                format!(
                    "control characters are not allowed (found {})",
                    c.escape_unicode()
                ),
            ));
        } else if !crate::text::is_email_address(a) {
            out.push((key, format!("`{a}` is not an email address")));
        }
    }
}

impl PolicySettings {
    /// Range checks; the message names the key (the first problem of `problems`).
    pub fn validate(&self) -> Result<(), String> {
        match self.problems().into_iter().next() {
            Some((key, message)) => Err(format!("{key}: {message}")),
            None => Ok(()),
        }
    }

    /// Every problem of these settings, each with its key (`check-config` lists them all).
    pub fn problems(&self) -> Vec<KeyProblem> {
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
                crate::ceilings::MAX_SPAM_MESSAGES_PER_HOUR,
            ),
            (
                "tenant_spam_messages_per_hour",
                self.tenant_spam_messages_per_hour,
                1_000_000,
            ),
            ("max_unblocks_per_day", self.max_unblocks_per_day, 1_000),
        ] {
            check_range(&mut out, key, v, max);
        }
        if let Some(r) = self.spam_ratio
            && !(0.0..=1.0).contains(&r)
        {
            out.push(("spam_ratio", format!("{r} is outside 0–1")));
        }
        if let Some(s) = self.reject_score
            && !s.is_finite()
        {
            out.push(("reject_score", format!("{s} is not a finite number")));
        }
        check_addresses(&mut out, "bcc_recipients", &self.bcc_recipients);
        check_addresses(&mut out, "notify_recipients", &self.notify_recipients);
        if self.bcc_suspicious_outbound_mail == Some(true)
            && self.bcc_recipients.as_ref().is_some_and(|v| v.is_empty())
        {
            out.push((
                "bcc_recipients",
                "must name at least one address when bcc_suspicious_outbound_mail is on".into(),
            ));
        }
        out
    }

    /// `outguard policy set KEY=VALUE`: parse `value` for `key` and store it. An empty value or
    /// `default` unsets the key. Lists are comma-separated. The whole set is re-validated, so an
    /// out-of-range value is refused with the key's name and nothing changes.
    pub fn set_key(&mut self, key: &str, value: &str) -> Result<(), String> {
        let v = value.trim();
        let unset = v.is_empty() || v == "default";
        let mut next = self.clone();
        let num = |k: &str| -> Result<Option<u32>, String> {
            if unset {
                return Ok(None);
            }
            v.replace('_', "")
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("{k}: `{v}` is not a whole number"))
        };
        let float = |k: &str| -> Result<Option<f64>, String> {
            if unset {
                return Ok(None);
            }
            v.parse::<f64>()
                .map(Some)
                .map_err(|_| format!("{k}: `{v}` is not a number"))
        };
        let boolean = |k: &str| -> Result<Option<bool>, String> {
            if unset {
                return Ok(None);
            }
            match v.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "1" => Ok(Some(true)),
                "false" | "off" | "no" | "0" => Ok(Some(false)),
                _ => Err(format!("{k}: `{v}` is not true/false")),
            }
        };
        let action = |k: &str| -> Result<Option<ThresholdAction>, String> {
            if unset {
                return Ok(None);
            }
            ThresholdAction::parse(v).map(Some).ok_or_else(|| {
                format!("{k}: `{v}` is not one of alert, block_user_for_today, block_user")
            })
        };
        let bulk = |k: &str| -> Result<Option<BulkAction>, String> {
            if unset {
                return Ok(None);
            }
            BulkAction::parse(v)
                .map(Some)
                .ok_or_else(|| format!("{k}: `{v}` is not one of warn, high-risk, reject"))
        };
        let list = || -> Option<Vec<String>> {
            if unset {
                return None;
            }
            Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            )
        };
        match key {
            "recipient_limit_external_per_hour" => {
                next.recipient_limit_external_per_hour = num(key)?
            }
            "recipient_limit_internal_per_hour" => {
                next.recipient_limit_internal_per_hour = num(key)?
            }
            "recipient_limit_per_day" => next.recipient_limit_per_day = num(key)?,
            "action_when_threshold_reached" => next.action_when_threshold_reached = action(key)?,
            "action_when_spam_threshold_reached" => {
                next.action_when_spam_threshold_reached = action(key)?
            }
            "spam_messages_per_hour" => next.spam_messages_per_hour = num(key)?,
            "spam_ratio" => next.spam_ratio = float(key)?,
            "tenant_spam_messages_per_hour" => next.tenant_spam_messages_per_hour = num(key)?,
            "reject_score" => next.reject_score = float(key)?,
            "quarantine" => next.quarantine = boolean(key)?,
            "bcc_suspicious_outbound_mail" => next.bcc_suspicious_outbound_mail = boolean(key)?,
            "bcc_recipients" => next.bcc_recipients = list(),
            "notify_recipients" => next.notify_recipients = list(),
            "max_unblocks_per_day" => next.max_unblocks_per_day = num(key)?,
            "bulk_dkim_action" => next.bulk_dkim_action = bulk(key)?,
            "bulk_spf_action" => next.bulk_spf_action = bulk(key)?,
            "bulk_dmarc_action" => next.bulk_dmarc_action = bulk(key)?,
            "bulk_unsubscribe_action" => next.bulk_unsubscribe_action = bulk(key)?,
            other => {
                return Err(format!(
                    "unknown policy key `{other}` (known: {})",
                    POLICY_KEYS.join(", ")
                ));
            }
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Apply `KEY=VALUE` (as typed on the command line).
    pub fn set_assignment(&mut self, assignment: &str) -> Result<(), String> {
        let (k, v) = assignment
            .split_once('=')
            .ok_or_else(|| format!("`{assignment}` is not KEY=VALUE"))?;
        self.set_key(k.trim(), v)
    }

    /// Each key with its value as `policy show` prints it (None = unset).
    pub fn entries(&self) -> Vec<(&'static str, Option<String>)> {
        let n = |v: Option<u32>| v.map(|x| x.to_string());
        let f = |v: Option<f64>| v.map(|x| x.to_string());
        let b = |v: Option<bool>| v.map(|x| x.to_string());
        let a = |v: Option<ThresholdAction>| v.map(|x| x.as_str().to_string());
        let l = |v: &Option<Vec<String>>| v.as_ref().map(|x| x.join(","));
        let k = |v: Option<BulkAction>| v.map(|x| x.as_str().to_string());
        let values = [
            n(self.recipient_limit_external_per_hour),
            n(self.recipient_limit_internal_per_hour),
            n(self.recipient_limit_per_day),
            a(self.action_when_threshold_reached),
            a(self.action_when_spam_threshold_reached),
            n(self.spam_messages_per_hour),
            f(self.spam_ratio),
            n(self.tenant_spam_messages_per_hour),
            f(self.reject_score),
            b(self.quarantine),
            b(self.bcc_suspicious_outbound_mail),
            l(&self.bcc_recipients),
            l(&self.notify_recipients),
            n(self.max_unblocks_per_day),
            k(self.bulk_dkim_action),
            k(self.bulk_spf_action),
            k(self.bulk_dmarc_action),
            k(self.bulk_unsubscribe_action),
        ];
        POLICY_KEYS.iter().copied().zip(values).collect()
    }

    /// Concrete values for one sender: `self` (the matched policy), then the tenant's default,
    /// then the service-wide settings, then the built-in defaults. 0 counts as unset.
    pub fn resolve(
        &self,
        tenant_default: &PolicySettings,
        service: &PolicySettings,
    ) -> EffectivePolicy {
        let layers = [self, tenant_default, service];
        let num = |get: fn(&PolicySettings) -> Option<u32>, dflt: u32| {
            layers
                .iter()
                .filter_map(|l| get(l))
                .find(|&v| v != 0)
                .unwrap_or(dflt)
        };
        let pick = |get: &dyn Fn(&PolicySettings) -> Option<ThresholdAction>, dflt| {
            layers.iter().find_map(|l| get(l)).unwrap_or(dflt)
        };
        let flag = |get: fn(&PolicySettings) -> Option<bool>| {
            layers.iter().find_map(|l| get(l)).unwrap_or(false)
        };
        let bulk = |get: fn(&PolicySettings) -> Option<BulkAction>| {
            layers.iter().find_map(|l| get(l)).unwrap_or_default()
        };
        let list = |get: fn(&PolicySettings) -> &Option<Vec<String>>| {
            layers
                .iter()
                .find_map(|l| get(l).clone())
                .unwrap_or_default()
        };
        EffectivePolicy {
            external_per_hour: num(
                |s| s.recipient_limit_external_per_hour,
                DEFAULT_EXTERNAL_PER_HOUR,
            ),
            internal_per_hour: num(
                |s| s.recipient_limit_internal_per_hour,
                DEFAULT_INTERNAL_PER_HOUR,
            ),
            per_day: num(|s| s.recipient_limit_per_day, DEFAULT_PER_DAY),
            action: pick(
                &|s| s.action_when_threshold_reached,
                ThresholdAction::BlockUserForToday,
            ),
            spam_action: pick(
                &|s| s.action_when_spam_threshold_reached,
                ThresholdAction::BlockUser,
            ),
            spam_messages_per_hour: num(
                |s| s.spam_messages_per_hour,
                DEFAULT_SPAM_MESSAGES_PER_HOUR,
            ),
            spam_ratio: layers
                .iter()
                .filter_map(|l| l.spam_ratio)
                .find(|&r| r > 0.0)
                .unwrap_or(DEFAULT_SPAM_RATIO),
            tenant_spam_messages_per_hour: num(
                |s| s.tenant_spam_messages_per_hour,
                DEFAULT_TENANT_SPAM_MESSAGES_PER_HOUR,
            ),
            reject_score: layers.iter().find_map(|l| l.reject_score),
            quarantine: flag(|s| s.quarantine),
            bcc_suspicious_outbound_mail: flag(|s| s.bcc_suspicious_outbound_mail),
            bcc_recipients: list(|s| &s.bcc_recipients),
            notify_recipients: list(|s| &s.notify_recipients),
            max_unblocks_per_day: num(|s| s.max_unblocks_per_day, DEFAULT_MAX_UNBLOCKS_PER_DAY),
            bulk: BulkActions {
                dkim: bulk(|s| s.bulk_dkim_action),
                spf: bulk(|s| s.bulk_spf_action),
                dmarc: bulk(|s| s.bulk_dmarc_action),
                unsubscribe: bulk(|s| s.bulk_unsubscribe_action),
            },
        }
    }
}

/// The settings that apply to one sender, every value concrete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectivePolicy {
    pub external_per_hour: u32,
    pub internal_per_hour: u32,
    pub per_day: u32,
    pub action: ThresholdAction,
    pub spam_action: ThresholdAction,
    pub spam_messages_per_hour: u32,
    pub spam_ratio: f64,
    pub tenant_spam_messages_per_hour: u32,
    /// None: spam is never refused at DATA, only routed/quarantined.
    pub reject_score: Option<f64>,
    pub quarantine: bool,
    pub bcc_suspicious_outbound_mail: bool,
    pub bcc_recipients: Vec<String>,
    pub notify_recipients: Vec<String>,
    pub max_unblocks_per_day: u32,
    /// The bulk compliance checks' actions (default `warn` for all).
    #[serde(default)]
    pub bulk: BulkActions,
}

impl Default for EffectivePolicy {
    /// The built-in service defaults.
    fn default() -> Self {
        PolicySettings::default().resolve(&PolicySettings::default(), &PolicySettings::default())
    }
}

/// Who a custom policy applies to. Values of one condition are OR'ed, different conditions are
/// AND'ed, exceptions are OR'ed (EOP's rule model). Domains include their subdomains. A scope
/// with neither senders nor domains matches nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyScope {
    pub senders: Vec<String>,
    pub domains: Vec<String>,
    pub except_senders: Vec<String>,
    pub except_domains: Vec<String>,
}

fn domain_matches(sender_domain: &str, d: &str) -> bool {
    let d = d.trim().trim_start_matches('@').trim_end_matches('.');
    sender_domain.eq_ignore_ascii_case(d)
        || (sender_domain.len() > d.len()
            && sender_domain.as_bytes()[sender_domain.len() - d.len() - 1] == b'.'
            && sender_domain[sender_domain.len() - d.len()..].eq_ignore_ascii_case(d))
}

impl PolicyScope {
    pub fn matches(&self, sender: &str) -> bool {
        let sender = sender.trim();
        let domain = sender
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .trim_end_matches('.');
        let is_sender =
            |list: &[String]| list.iter().any(|s| s.trim().eq_ignore_ascii_case(sender));
        let in_domain =
            |list: &[String]| !domain.is_empty() && list.iter().any(|d| domain_matches(domain, d));
        if self.senders.is_empty() && self.domains.is_empty() {
            return false;
        }
        let included = (self.senders.is_empty() || is_sender(&self.senders))
            && (self.domains.is_empty() || in_domain(&self.domains));
        included && !is_sender(&self.except_senders) && !in_domain(&self.except_domains)
    }
}

/// A tenant's custom policy. The tenant's default policy is kept apart (it has no scope and
/// the lowest priority).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// 0 is the highest; unique within a tenant.
    pub priority: u32,
    pub scope: PolicyScope,
    pub settings: PolicySettings,
}

/// The custom policy for `sender`: the highest priority (lowest number) whose scope matches.
/// None: the tenant's default applies.
pub fn select_policy<'a>(policies: &'a [Policy], sender: &str) -> Option<&'a Policy> {
    policies
        .iter()
        .filter(|p| p.scope.matches(sender))
        .min_by_key(|p| p.priority)
}

/// A tenant's set of custom policies: names 1–64 characters and unique, priorities unique,
/// settings valid.
pub fn validate_policies(policies: &[Policy]) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    let mut prios = std::collections::HashMap::new();
    for p in policies {
        crate::text::check_no_control("name", &p.name)?;
        for (key, list) in [
            ("scope.senders", &p.scope.senders),
            ("scope.domains", &p.scope.domains),
            ("scope.except_senders", &p.scope.except_senders),
            ("scope.except_domains", &p.scope.except_domains),
        ] {
            for v in list {
                crate::text::check_no_control(key, v)?;
            }
        }
        if p.name.trim().is_empty() || p.name.chars().count() > 64 {
            return Err(format!("policy name `{}` must be 1–64 characters", p.name));
        }
        if p.name == "default" {
            return Err("policy name `default` is reserved for the tenant's default policy".into());
        }
        if !names.insert(p.name.as_str()) {
            return Err(format!("policy `{}` exists twice", p.name));
        }
        if let Some(other) = prios.insert(p.priority, p.name.as_str()) {
            return Err(format!(
                "priority {} is used by both `{other}` and `{}`",
                p.priority, p.name
            ));
        }
        p.settings
            .validate()
            .map_err(|m| format!("policy `{}`: {m}", p.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz find (`api_json`): without serde_json's `float_roundtrip`, a long decimal parsed
    /// one ULP off, so a policy read back from the store differed from the one that was saved.
    #[test]
    fn settings_json_round_trip_is_exact() {
        let body = r#"{"spam_ratio":0.000000000000000009123563345811836471,"reject_score":9.5}"#;
        let s: PolicySettings = serde_json::from_str(body).unwrap();
        let back: PolicySettings =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn validate_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("recipient_limit_external_per_hour", "10000", None),
            (
                "recipient_limit_external_per_hour",
                "10001",
                Some("recipient_limit_external_per_hour"),
            ),
            ("recipient_limit_internal_per_hour", "0", None),
            (
                "recipient_limit_per_day",
                "20000",
                Some("recipient_limit_per_day"),
            ),
            (
                "recipient_limit_per_day",
                "-1",
                Some("recipient_limit_per_day"),
            ),
            ("spam_ratio", "0.3", None),
            ("spam_ratio", "1.5", Some("spam_ratio")),
            ("spam_ratio", "abc", Some("spam_ratio")),
            (
                "spam_messages_per_hour",
                "10001",
                Some("spam_messages_per_hour"),
            ),
            ("tenant_spam_messages_per_hour", "5000", None),
            ("action_when_threshold_reached", "alert", None),
            (
                "action_when_threshold_reached",
                "explode",
                Some("action_when_threshold_reached"),
            ),
            (
                "action_when_spam_threshold_reached",
                "block_user_for_today",
                None,
            ),
            ("reject_score", "15.5", None),
            ("reject_score", "inf", Some("reject_score")),
            ("quarantine", "on", None),
            ("quarantine", "maybe", Some("quarantine")),
            ("bcc_recipients", "a@x.example, b@y.example", None),
            ("bcc_recipients", "not-an-address", Some("bcc_recipients")),
            ("bcc_recipients", "z\0y@a.example", Some("bcc_recipients")),
            (
                "notify_recipients",
                "a\x1b[2J@a.example",
                Some("notify_recipients"),
            ),
            (
                "bcc_recipients",
                "1@a.example,2@a.example,3@a.example,4@a.example,5@a.example,6@a.example,7@a.example,8@a.example,9@a.example,10@a.example",
                None,
            ),
            (
                "bcc_recipients",
                "1@a.example,2@a.example,3@a.example,4@a.example,5@a.example,6@a.example,7@a.example,8@a.example,9@a.example,10@a.example,11@a.example",
                Some("at most 10"),
            ),
            ("notify_recipients", "admin@t.example", None),
            ("max_unblocks_per_day", "5", None),
            ("max_unblocks_per_day", "5000", Some("max_unblocks_per_day")),
            ("bulk_dmarc_action", "reject", None),
            ("bulk_dkim_action", "high-risk", None),
            ("bulk_spf_action", "high_risk", None),
            (
                "bulk_unsubscribe_action",
                "block",
                Some("bulk_unsubscribe_action"),
            ),
            ("bogus_key", "1", Some("bogus_key")),
        ];
        for (k, v, err) in cases {
            let mut s = PolicySettings::default();
            let r = s.set_key(k, v);
            match err {
                None => assert!(r.is_ok(), "{k}={v}: {r:?}"),
                Some(name) => {
                    let e = r.expect_err(&format!("{k}={v} should fail"));
                    assert!(e.contains(name), "{k}={v}: `{e}` should name {name}");
                    assert_eq!(
                        s,
                        PolicySettings::default(),
                        "a refused set changes nothing"
                    );
                }
            }
        }
    }

    #[test]
    fn set_and_unset_and_show() {
        let mut s = PolicySettings::default();
        s.set_assignment("recipient_limit_external_per_hour=50")
            .unwrap();
        s.set_assignment("bcc_recipients=a@x.example,b@x.example")
            .unwrap();
        assert_eq!(s.recipient_limit_external_per_hour, Some(50));
        assert_eq!(
            s.bcc_recipients.as_deref(),
            Some(&["a@x.example".to_string(), "b@x.example".into()][..])
        );
        let shown = s.entries();
        assert_eq!(shown.len(), POLICY_KEYS.len());
        assert_eq!(
            shown[0],
            ("recipient_limit_external_per_hour", Some("50".into()))
        );
        s.set_key("recipient_limit_external_per_hour", "default")
            .unwrap();
        assert_eq!(s.recipient_limit_external_per_hour, None);
        assert!(s.set_assignment("no-equals-sign").is_err());
    }

    #[test]
    fn config_toml_round_trip_and_unknown_key() {
        let s: PolicySettings = toml::from_str(
            "recipient_limit_external_per_hour = 100\naction_when_threshold_reached = \"block_user\"\nspam_ratio = 0.4\n",
        )
        .unwrap();
        assert_eq!(
            s.action_when_threshold_reached,
            Some(ThresholdAction::BlockUser)
        );
        let back: PolicySettings = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let e = toml::from_str::<PolicySettings>("recipient_limit = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recipient_limit"), "{e}");
    }

    #[test]
    fn resolve_layers_and_zero_means_default() {
        let builtin = EffectivePolicy::default();
        assert_eq!(
            (
                builtin.external_per_hour,
                builtin.internal_per_hour,
                builtin.per_day
            ),
            (500, 1000, 1000)
        );
        assert_eq!(builtin.action, ThresholdAction::BlockUserForToday);
        assert_eq!(builtin.spam_action, ThresholdAction::BlockUser);
        assert_eq!(
            (
                builtin.spam_messages_per_hour,
                builtin.tenant_spam_messages_per_hour
            ),
            (10, 200)
        );
        assert_eq!(builtin.spam_ratio, 0.5);
        assert_eq!(builtin.max_unblocks_per_day, 3);
        assert_eq!(builtin.reject_score, None);
        assert_eq!(
            builtin.bulk,
            BulkActions::default(),
            "every bulk check warns"
        );
        assert_eq!(builtin.bulk.dmarc, BulkAction::Warn);

        let service = PolicySettings {
            recipient_limit_per_day: Some(2000),
            quarantine: Some(true),
            ..Default::default()
        };
        let tenant = PolicySettings {
            recipient_limit_external_per_hour: Some(300),
            recipient_limit_per_day: Some(0),
            action_when_threshold_reached: Some(ThresholdAction::Alert),
            ..Default::default()
        };
        let custom = PolicySettings {
            recipient_limit_external_per_hour: Some(0),
            quarantine: Some(false),
            ..Default::default()
        };
        let e = custom.resolve(&tenant, &service);
        assert_eq!(
            e.external_per_hour, 300,
            "0 in the custom policy falls through to the tenant"
        );
        assert_eq!(
            e.per_day, 2000,
            "0 in the tenant falls through to the service"
        );
        assert_eq!(e.action, ThresholdAction::Alert);
        assert!(!e.quarantine, "explicit false wins over the service's true");
        let service = PolicySettings {
            bulk_dmarc_action: Some(BulkAction::Reject),
            bulk_dkim_action: Some(BulkAction::HighRisk),
            ..Default::default()
        };
        let tenant = PolicySettings {
            bulk_dmarc_action: Some(BulkAction::Warn),
            ..Default::default()
        };
        let e = PolicySettings::default().resolve(&tenant, &service);
        assert_eq!(
            (e.bulk.dmarc, e.bulk.dkim, e.bulk.spf),
            (BulkAction::Warn, BulkAction::HighRisk, BulkAction::Warn)
        );
    }

    fn pol(name: &str, priority: u32, scope: PolicyScope) -> Policy {
        Policy {
            name: name.into(),
            priority,
            scope,
            settings: PolicySettings::default(),
        }
    }

    #[test]
    fn selection_table() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let policies = vec![
            pol(
                "sales",
                5,
                PolicyScope {
                    domains: s(&["sales.example"]),
                    ..Default::default()
                },
            ),
            pol(
                "ceo",
                1,
                PolicyScope {
                    senders: s(&["ceo@corp.example"]),
                    ..Default::default()
                },
            ),
            pol(
                "corp",
                2,
                PolicyScope {
                    domains: s(&["corp.example"]),
                    except_senders: s(&["bot@corp.example"]),
                    except_domains: s(&["lab.corp.example"]),
                    ..Default::default()
                },
            ),
            pol(
                "both",
                3,
                PolicyScope {
                    senders: s(&["x@sales.example"]),
                    domains: s(&["other.example"]),
                    ..Default::default()
                },
            ),
            pol("empty", 0, PolicyScope::default()),
        ];
        validate_policies(&policies).unwrap();
        let cases = [
            ("CEO@corp.example", Some("ceo")),
            ("jane@corp.example", Some("corp")),
            ("jane@eu.corp.example", Some("corp")),
            ("bot@corp.example", None),
            ("x@lab.corp.example", None),
            ("x@sales.example", Some("sales")),
            ("x@notcorp.example", None),
            ("x@other.example", None),
            ("", None),
        ];
        for (sender, want) in cases {
            assert_eq!(
                select_policy(&policies, sender).map(|p| p.name.as_str()),
                want,
                "{sender}"
            );
        }
    }

    #[test]
    fn policy_set_validation() {
        let a = pol("a", 1, PolicyScope::default());
        let b = pol("b", 1, PolicyScope::default());
        assert!(
            validate_policies(&[a.clone(), b])
                .unwrap_err()
                .contains("priority 1")
        );
        assert!(
            validate_policies(&[a.clone(), a.clone()])
                .unwrap_err()
                .contains("twice")
        );
        assert!(validate_policies(&[pol("default", 2, PolicyScope::default())]).is_err());
        let mut bad = pol("c", 3, PolicyScope::default());
        bad.settings.spam_ratio = Some(2.0);
        assert!(
            validate_policies(&[bad])
                .unwrap_err()
                .contains("spam_ratio")
        );
    }

    #[test]
    fn config_policy_default_is_checked_with_the_key_named() {
        let c = crate::config::Config::parse(
            "[policy.default]\nrecipient_limit_external_per_hour = 300\naction_when_threshold_reached = \"alert\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.policy.default.recipient_limit_external_per_hour,
            Some(300)
        );
        let e = crate::config::Config::parse(
            "[policy.default]\nrecipient_limit_per_day = 20000\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("recipient_limit_per_day"), "{e}");
        let e = crate::config::Config::parse("[policy.default]\nrecipient_limits = 5\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recipient_limits"), "{e}");
    }
}
