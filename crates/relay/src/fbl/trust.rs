//! Who vouches for a report (SPEC §9 "Reports are believed only from trusted reporters").
//!
//! Anyone can connect to the fbl listener and write an ARF report or a DSN about any message,
//! so a report is only *believed* — counted toward complaint and bounce rates, and learned by
//! the tenant's spam overlay — when one of these vouches for it:
//! - its source IP is in `[fbl] trusted_reporters` (the entry, e.g. `192.0.2.0/24`, names it);
//! - it carries a valid DKIM signature whose `d=` is in `[fbl] trusted_dkim_domains`
//!   (`dkim:<domain>`); a signature with a body length limit (`l=`) is not enough, since
//!   anything could follow the signed part;
//! - an operator posted it through `POST /api/v1/fbl`, or imported it with the CLI on the store
//!   (`operator`). A tenant admin cannot post reports at all (403): a tenant must not be able
//!   to make complaints count, against itself or anyone.
//!
//! The vouching entry is also the dedupe key: a message counts at most one complaint per entry.
//! Everything else is stored with `trusted: false` for operators to read, and changes nothing.

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::config::ResolverOpts;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
use outguard_proto::Reply;
use outguard_types::config::{Config, DnsConfig};
use outguard_types::model::Millis;

use crate::server::Relay;

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The fbl listener, from this source IP.
    Smtp(IpAddr),
    /// `POST /api/v1/fbl` (operators only) or `outguard fbl import` on the store.
    Operator,
}

/// The trust entry for an operator's report.
pub const OPERATOR: &str = "operator";

/// How long a DKIM verification may wait for DNS before the report is taken as unsigned.
const DKIM_TIMEOUT: Duration = Duration::from_secs(10);

/// The entry that vouches for a report from `source`, or `None` (untrusted).
pub async fn vouch(cfg: &Config, source: Source, raw: &[u8]) -> Option<String> {
    let ip = match source {
        Source::Operator => return Some(OPERATOR.to_string()),
        Source::Smtp(ip) => ip,
    };
    if let Some(net) = trusted_net(cfg, ip) {
        return Some(net);
    }
    dkim_domain(cfg, raw).await.map(|d| format!("dkim:{d}"))
}

/// The `trusted_reporters` entry containing `ip` (normalised CIDR text).
pub fn trusted_net(cfg: &Config, ip: IpAddr) -> Option<String> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    // Validated by check-config and at start; an entry that does not parse trusts nobody.
    let nets = cfg.fbl.trusted_nets().unwrap_or_default();
    nets.iter().find(|n| n.contains(&ip)).map(|n| n.to_string())
}

/// The trusted domain of a passing DKIM signature on the report, if any.
async fn dkim_domain(cfg: &Config, raw: &[u8]) -> Option<String> {
    let trusted = &cfg.fbl.trusted_dkim_domains;
    if trusted.is_empty() {
        return None;
    }
    let msg = AuthenticatedMessage::parse(raw)?;
    if msg.dkim_headers.is_empty() {
        return None;
    }
    let auth = match authenticator(&cfg.dns) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "no resolver to verify a report's DKIM signature");
            return None;
        }
    };
    let results = tokio::time::timeout(DKIM_TIMEOUT, auth.verify_dkim(Parameters::new(&msg)))
        .await
        .ok()?;
    results
        .iter()
        .filter(|r| r.result() == &DkimResult::Pass)
        .filter_map(|r| r.signature())
        .filter(|s| s.l == 0)
        .map(|s| s.d.trim_end_matches('.').to_ascii_lowercase())
        .find(|d| trusted.iter().any(|t| t.eq_ignore_ascii_case(d)))
}

/// A DKIM verifier on the server's resolver (`[dns] resolver`, else the system's).
pub(crate) fn authenticator(
    dns: &DnsConfig,
) -> Result<MessageAuthenticator, hickory_resolver::net::NetError> {
    match dns.resolver {
        Some(addr) => {
            let config = outguard_delivery::mx::server_config(addr);
            let mut opts = ResolverOpts::default();
            opts.timeout = Duration::from_secs(5);
            opts.attempts = 2;
            MessageAuthenticator::new(config, opts)
        }
        None => MessageAuthenticator::new_system_conf(),
    }
}

/// Counter key of the reports one source IP sent in the last minute.
fn rate_key(ip: IpAddr) -> String {
    format!("fbl:ip:{ip}:reports")
}

/// Admits one more report transaction from `ip` on the fbl listener: `451 4.7.0` past
/// `[fbl] reports_per_minute_per_ip` in the last minute. A counter store that cannot answer
/// admits (reports are kept, never lost, and the size cap still holds).
pub async fn admit(relay: &Relay, ip: IpAddr, now: Millis) -> Result<(), Reply> {
    let limit = u64::from(relay.cfg.fbl.reports_per_minute_per_ip);
    match relay
        .enforcer
        .counters
        .record(&rate_key(ip), 1, 60_000, now)
        .await
    {
        Ok(n) if n > limit => {
            tracing::info!(%ip, n, "fbl listener: report rate exceeded");
            Err(Reply::new(
                451,
                "4.7.0",
                format!("Too many reports from {ip} (at most {limit} a minute), try again later"),
            ))
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count reports per source IP");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        Config::parse(&format!("[fbl]\n{extra}"), "t.toml").expect("config")
    }

    #[tokio::test]
    async fn reporters_are_trusted_by_network_or_as_operator() {
        let c = cfg(r#"trusted_reporters = ["192.0.2.0/24", "2001:db8::1", "127.0.0.21"]"#);
        let v = |ip: &str| vouch(&c, Source::Smtp(ip.parse().expect("ip")), b"x");
        assert_eq!(v("192.0.2.77").await.as_deref(), Some("192.0.2.0/24"));
        assert_eq!(v("::ffff:192.0.2.5").await.as_deref(), Some("192.0.2.0/24"));
        assert_eq!(v("2001:db8::1").await.as_deref(), Some("2001:db8::1/128"));
        assert_eq!(v("127.0.0.21").await.as_deref(), Some("127.0.0.21/32"));
        assert_eq!(v("127.0.0.22").await, None);
        assert_eq!(v("198.51.100.1").await, None);
        assert_eq!(
            vouch(&c, Source::Operator, b"x").await.as_deref(),
            Some(OPERATOR)
        );
        // No DKIM domains configured: a signature is not even looked at.
        let signed = b"DKIM-Signature: v=1; a=ed25519-sha256; d=isp.example; s=s; h=from; bh=x; b=y\r\nFrom: a@isp.example\r\n\r\nbody\r\n";
        assert_eq!(
            vouch(
                &cfg(""),
                Source::Smtp("127.0.0.9".parse().expect("ip")),
                signed
            )
            .await,
            None
        );
    }
}
