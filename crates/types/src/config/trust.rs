//! The keys of SPEC §9's trust boundaries: which reports are believed (`[fbl]`), how forwarded
//! mail is rewritten (`[srs]`), and where webhooks may go (`[webhooks]`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::values::{human_duration, human_size, valid_dns_name};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FblConfig {
    /// Recipient domains the `fbl` listener accepts reports for.
    pub domains: Vec<String>,
    /// Window complaint and bounce rates are measured over (default 24h).
    #[serde(with = "human_duration")]
    pub window: Duration,
    /// Complaint rate (complaints / delivered recipients) that raises `complaint_rate_exceeded`.
    pub complaint_alert_rate: f64,
    /// Complaint rate that also restricts the account (the policy's spam action).
    pub complaint_restrict_rate: f64,
    /// Fewest delivered recipients in the window before any rate is judged.
    pub min_messages: u64,
    /// Hard-bounce rate (5xx recipients / delivered recipients) that alerts and restricts.
    pub bounce_rate: f64,
    /// Whether a bounce rate over `bounce_rate` restricts (else it only alerts).
    pub bounce_restrict: bool,
    /// Source IPs or CIDRs (`"192.0.2.7"`, `"198.51.100.0/24"`) whose reports are believed
    /// (SPEC §9): only these, a `trusted_dkim_domains` signature or an operator's `POST
    /// /api/v1/fbl` count toward rates and train the spam overlay.
    pub trusted_reporters: Vec<String>,
    /// Domains whose valid DKIM signature (`d=`, exact match) makes a report believed.
    pub trusted_dkim_domains: Vec<String>,
    /// Largest report taken (fbl listener `552 5.3.4`, API `413`). Default 1MB.
    #[serde(with = "human_size")]
    pub max_report_size: u64,
    /// Reports taken per source IP per minute on the fbl listener (`451 4.7.0` beyond).
    pub reports_per_minute_per_ip: u32,
}

impl FblConfig {
    /// `trusted_reporters` as networks (a bare address is a /32 or /128); the entry that
    /// failed to parse on error.
    pub fn trusted_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_reporters
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<ipnet::IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| e.to_string())
            })
            .collect()
    }
}

impl Default for FblConfig {
    fn default() -> Self {
        FblConfig {
            domains: Vec::new(),
            window: Duration::from_secs(24 * 3600),
            complaint_alert_rate: 0.001,
            complaint_restrict_rate: 0.003,
            min_messages: 1000,
            bounce_rate: 0.10,
            bounce_restrict: true,
            trusted_reporters: Vec::new(),
            trusted_dkim_domains: Vec::new(),
            max_report_size: 1000 * 1000,
            reports_per_minute_per_ip: 60,
        }
    }
}

/// `[srs]`: forwarded mail leaves with an `SRS0=…@domain` envelope sender; bounces to such
/// addresses arrive on the `fbl` listener and are reversed to the original sender.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsConfig {
    /// Our SRS domain: its MX must point at the `fbl` listener, its SPF at the `relay` pool.
    pub domain: String,
    /// HMAC key of the address hashes (at least 16 bytes). Changing it invalidates addresses
    /// still in flight: their bounces are refused.
    pub secret: String,
    /// How long a rewritten address is honoured (whole days, 1d–1000d; default 21d).
    #[serde(with = "human_duration", default = "SrsConfig::default_max_age")]
    pub max_age: Duration,
}

impl std::fmt::Debug for SrsConfig {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrsConfig")
            .field("domain", &self.domain)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl SrsConfig {
    pub const MIN_SECRET_BYTES: usize = 16;
    /// Longest `max_age`: SRS timestamps count days mod 1024.
    pub const MAX_AGE_DAYS: u64 = 1000;

    fn default_max_age() -> Duration {
        Duration::from_secs(21 * 86_400)
    }

    pub fn max_age_days(&self) -> u32 {
        (self.max_age.as_secs() / 86_400) as u32
    }

    /// Returns the offending key (`srs.secret`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !valid_dns_name(&self.domain) {
            return Err((
                "srs.domain".into(),
                format!("`{}` is not a valid DNS name", self.domain),
            ));
        }
        if self.secret.len() < Self::MIN_SECRET_BYTES {
            return Err((
                "srs.secret".into(),
                format!(
                    "must be at least {} bytes (it is {})",
                    Self::MIN_SECRET_BYTES,
                    self.secret.len()
                ),
            ));
        }
        let days = self.max_age.as_secs() / 86_400;
        if !self.max_age.as_secs().is_multiple_of(86_400)
            || !(1..=Self::MAX_AGE_DAYS).contains(&days)
        {
            return Err((
                "srs.max_age".into(),
                format!(
                    "`{}` must be whole days between 1d and {}d",
                    humantime::format_duration(self.max_age),
                    Self::MAX_AGE_DAYS
                ),
            ));
        }
        Ok(())
    }
}

/// `[webhooks]`: the operator's own hooks (`[[webhooks.hooks]]`, not restricted) and the rules
/// for the tenants' API subscriptions (SPEC §9). The older form, a bare `[[webhooks]]` array of
/// hooks, still reads as `hooks` (a file can use one form or the other: TOML does not allow a
/// table and an array of tables under one name).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WebhooksConfig {
    /// CIDRs that API subscriptions may reach although they are not public (internal
    /// receivers); cloud-metadata addresses stay refused unless listed as a single address.
    pub allow_private: Vec<ipnet::IpNet>,
    /// PEM file of extra root CAs trusted for `https://` hooks, beside the platform's roots.
    pub extra_roots: Option<PathBuf>,
    pub hooks: Vec<WebhookConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct WebhooksTable {
    #[serde(deserialize_with = "cidrs")]
    allow_private: Vec<ipnet::IpNet>,
    extra_roots: Option<PathBuf>,
    hooks: Vec<WebhookConfig>,
}

/// `["10.0.0.0/8", …]`; a bad entry is named with the key, since the bare parser's message
/// ("invalid IP address syntax") does not say which key or what form is expected.
fn cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "allow_private: `{s}` is not a CIDR (like \"10.0.0.0/8\" or \"fd00::/8\")"
                ))
            })
        })
        .collect()
}

impl<'de> Deserialize<'de> for WebhooksConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = WebhooksConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [webhooks] table (or the older [[webhooks]] array of hooks)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                let hooks = Vec::<WebhookConfig>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(a),
                )?;
                Ok(WebhooksConfig {
                    hooks,
                    ..WebhooksConfig::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                let t =
                    WebhooksTable::deserialize(serde::de::value::MapAccessDeserializer::new(a))?;
                Ok(WebhooksConfig {
                    allow_private: t.allow_private,
                    extra_roots: t.extra_roots,
                    hooks: t.hooks,
                })
            }
        }
        d.deserialize_any(Either)
    }
}

impl WebhooksConfig {
    /// Every hook's URL parses (`extra_roots` is read with the other files, `files.rs`).
    /// Returns the offending key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, h) in self.hooks.iter().enumerate() {
            crate::webhook_url::WebhookUrl::parse(&h.url)
                .map_err(|m| (format!("webhooks.hooks[{i}].url"), m))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: String,
    /// Alert kinds to send; empty = all.
    #[serde(default)]
    pub kinds: Vec<String>,
}
