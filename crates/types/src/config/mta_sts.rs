//! `[delivery.mta_sts]` (issue 21): whether delivery looks up and applies the MTA-STS policy
//! (RFC 8461) of destinations that have no TLS policy of the operator's, and the HTTPS port the
//! policy is fetched from (443; a test or lab knob, since the RFC fixes the port).

use serde::{Deserialize, Serialize};

use super::values::port;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtaStsConfig {
    /// Look up `_mta-sts.<domain>` and apply the policy. Default true.
    pub enabled: bool,
    /// Port of `https://mta-sts.<domain>/` (443; tests and labs only).
    #[serde(with = "port")]
    pub https_port: u16,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        MtaStsConfig {
            enabled: true,
            https_port: 443,
        }
    }
}
