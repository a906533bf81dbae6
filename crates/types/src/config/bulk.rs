//! `[bulk]` (issue 25 part 4): the bulk-sender compliance gate. A tenant's stream of mail from
//! one From domain is *bulk* when a message is marked (`List-Unsubscribe`, or `Precedence: bulk`
//! or `list`) or when the stream sent more than `provider_recipients_per_day` recipients in the
//! last 24 hours to one mailbox provider (one of `providers`, each a group of domains). Bulk
//! messages are checked against the Gmail / Yahoo / Outlook.com sender requirements; what a
//! failing check does is a policy key per check (`bulk_dmarc_action` …, default `warn`).

use serde::{Deserialize, Serialize};

use super::problems::Problems;
use super::values::valid_dns_name;

/// One mailbox provider: the domains whose recipients count together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkProvider {
    /// Shown on the compliance page and in the trace (1–64 printable characters, unique).
    pub name: String,
    /// Recipient domains of this provider (lowercase DNS names, each in one provider only).
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BulkConfig {
    /// Detect bulk streams and check them. Default true (with every action `warn`, this only
    /// adds trace lines and the compliance page).
    pub enabled: bool,
    /// Recipients per 24 hours to one provider above which a stream is bulk (1–10,000,000).
    /// Default 5000 (Gmail's and Yahoo's "bulk sender" line).
    pub provider_recipients_per_day: u32,
    /// The providers counted (at most 50, each at most 100 domains). Default: Gmail, Yahoo
    /// (with AOL), Outlook.com.
    pub providers: Vec<BulkProvider>,
}

pub fn default_providers() -> Vec<BulkProvider> {
    let p = |name: &str, domains: &[&str]| BulkProvider {
        name: name.to_string(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
    };
    vec![
        p("Gmail", &["gmail.com", "googlemail.com"]),
        p(
            "Yahoo",
            &[
                "yahoo.com",
                "ymail.com",
                "rocketmail.com",
                "aol.com",
                "yahoo.co.uk",
                "yahoo.fr",
                "yahoo.de",
            ],
        ),
        p(
            "Outlook.com",
            &["outlook.com", "hotmail.com", "live.com", "msn.com"],
        ),
    ]
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            enabled: true,
            provider_recipients_per_day: 5000,
            providers: default_providers(),
        }
    }
}

impl BulkConfig {
    pub const MAX_PER_DAY: u32 = 10_000_000;
    pub const MAX_PROVIDERS: usize = 50;
    pub const MAX_DOMAINS: usize = 100;

    pub(super) fn check(&self, p: &mut Problems) {
        if !(1..=Self::MAX_PER_DAY).contains(&self.provider_recipients_per_day) {
            p.add(
                "bulk.provider_recipients_per_day",
                format!(
                    "{} is outside 1–{}",
                    self.provider_recipients_per_day,
                    Self::MAX_PER_DAY
                ),
            );
        }
        if self.providers.len() > Self::MAX_PROVIDERS {
            p.add(
                "bulk.providers",
                format!(
                    "{} providers, at most {} are allowed",
                    self.providers.len(),
                    Self::MAX_PROVIDERS
                ),
            );
        }
        let mut names = std::collections::HashSet::new();
        let mut seen = std::collections::HashMap::new();
        for prov in &self.providers {
            let name = prov.name.trim();
            if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
                p.add(
                    "bulk.providers.name",
                    format!(
                        "`{}` must be 1–64 printable characters",
                        prov.name.escape_debug()
                    ),
                );
            } else if !names.insert(name.to_ascii_lowercase()) {
                p.add("bulk.providers.name", format!("`{name}` is named twice"));
            }
            if prov.domains.is_empty() || prov.domains.len() > Self::MAX_DOMAINS {
                p.add(
                    "bulk.providers.domains",
                    format!("{name}: 1–{} domains are needed", Self::MAX_DOMAINS),
                );
            }
            for d in &prov.domains {
                if !valid_dns_name(d) || d.chars().any(|c| c.is_ascii_uppercase()) {
                    p.add(
                        "bulk.providers.domains",
                        format!("`{}` is not a lowercase domain name", d.escape_debug()),
                    );
                } else if let Some(other) = seen.insert(d.as_str(), name) {
                    p.add(
                        "bulk.providers.domains",
                        format!("`{d}` is in both {other} and {name}"),
                    );
                }
            }
        }
    }

    /// The provider whose domains include `domain` (exact, case-insensitive).
    pub fn provider_of(&self, domain: &str) -> Option<&BulkProvider> {
        let d = domain.trim_end_matches('.');
        self.providers
            .iter()
            .find(|p| p.domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
    }
}
