//! DNSBL monitor of our own outbound IPs (SPEC §4). Every pool IP is checked on every zone on
//! `[dnsbl] interval` (with jitter), each zone rate-limited; answers are classified per zone
//! ([`zones`]), one IP's state moves by `outguard_policy::listing`, and the [`monitor`] task drains listed
//! `regular` IPs, returns cleared ones and raises `ip_listed` / `ip_delisted`. Every check is
//! kept in the store (history per IP and zone). `outguard dnsbl check` runs one round without a
//! server ([`check_all`]); the API reads [`status`].

pub mod monitor;
pub mod query;
pub mod zones;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use outguard_store::{DnsblCheck, StoreError};
use outguard_types::config::{Config, PoolConfig};
use outguard_types::model::Millis;
use serde::Serialize;

pub use monitor::Monitor;
pub use query::{Checker, Outcome};
pub use zones::Zone;

use crate::server::Relay;

/// Least time between two queries to one zone (the per-zone rate limit: 20 queries/s).
pub const ZONE_QUERY_GAP: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum DnsblError {
    #[error(transparent)]
    Zone(#[from] zones::ZoneError),
    #[error(transparent)]
    Resolver(#[from] query::ResolverError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A zone list that does not parse is a configuration error (exit 64); a resolver that cannot
/// be built is not.
pub fn startup_error(e: DnsblError) -> anyhow::Error {
    match e {
        DnsblError::Zone(z) => {
            outguard_types::exit::UsageError(format!("bad configuration: {z}")).into()
        }
        other => anyhow::Error::new(other).context("starting the DNSBL monitor"),
    }
}

/// Every distinct pool IP with the names of the pools that have it, in config order.
pub fn pool_ips(pools: &[PoolConfig]) -> Vec<(IpAddr, Vec<String>)> {
    let mut out: Vec<(IpAddr, Vec<String>)> = Vec::new();
    for p in pools {
        for ip in &p.source_ips {
            match out.iter_mut().find(|(i, _)| i == ip) {
                Some((_, names)) => names.push(p.name.clone()),
                None => out.push((*ip, vec![p.name.clone()])),
            }
        }
    }
    out
}

/// Check every IP on every zone: zones in parallel, each zone's queries one after another at
/// most one per [`ZONE_QUERY_GAP`]. Results per IP in zone order.
pub async fn check_all(
    checker: &Checker,
    zones: &[Zone],
    ips: &[IpAddr],
) -> BTreeMap<IpAddr, Vec<(String, Outcome)>> {
    let per_zone = zones.iter().map(|zone| async move {
        let mut out = Vec::with_capacity(ips.len());
        for (i, ip) in ips.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(ZONE_QUERY_GAP).await;
            }
            out.push((*ip, checker.check(*ip, zone).await));
        }
        (zone.name.clone(), out)
    });
    let mut by_ip: BTreeMap<IpAddr, Vec<(String, Outcome)>> = BTreeMap::new();
    for (zone, results) in join_all(per_zone).await {
        for (ip, outcome) in results {
            by_ip.entry(ip).or_default().push((zone.clone(), outcome));
        }
    }
    by_ip
}

/// The store record of one answer.
pub fn check_record(ip: IpAddr, zone: &str, outcome: &Outcome, now: Millis) -> DnsblCheck {
    DnsblCheck {
        ip: ip.to_string(),
        zone: zone.to_string(),
        checked_at: now,
        status: outcome.status().to_string(),
        code: outcome.code(),
        reason: outcome.reason(),
    }
}

/// One pool IP as `GET /api/v1/dnsbl` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpStatus {
    pub ip: String,
    pub pools: Vec<String>,
    /// In rotation (false: drained because of a listing).
    pub healthy: bool,
    /// Some zone lists it (latest answers).
    pub listed: bool,
    /// Latest answer per zone (empty before the first check).
    pub zones: Vec<DnsblCheck>,
}

/// Listing state of every pool IP: latest answers from the store, rotation from the pools.
pub async fn status(relay: &Relay) -> Result<Vec<IpStatus>, DnsblError> {
    status_of(&relay.cfg, relay.store.dnsbl_state().await?, |ip| {
        relay.queue.pools().is_healthy(ip)
    })
}

fn status_of(
    cfg: &Config,
    state: Vec<DnsblCheck>,
    healthy: impl Fn(IpAddr) -> bool,
) -> Result<Vec<IpStatus>, DnsblError> {
    Ok(pool_ips(&cfg.pools)
        .into_iter()
        .map(|(ip, pools)| {
            let s = ip.to_string();
            let zones: Vec<DnsblCheck> = state.iter().filter(|c| c.ip == s).cloned().collect();
            IpStatus {
                listed: zones.iter().any(|c| c.status == "listed"),
                healthy: healthy(ip),
                ip: s,
                pools,
                zones,
            }
        })
        .collect())
}

/// History of one IP (`None`: all), newest first.
pub async fn history(
    relay: &Relay,
    ip: Option<&str>,
    limit: u32,
) -> Result<Vec<DnsblCheck>, DnsblError> {
    Ok(relay.store.dnsbl_history(ip, limit).await?)
}

/// `outguard_dnsbl_listed`: 1 when the zone lists the pool IP (latest check), written with the
/// one exposition writer of `crate::metrics`.
pub fn metrics_text(status: &[IpStatus]) -> String {
    let mut out = String::new();
    crate::metrics::family(
        &mut out,
        "outguard_dnsbl_listed",
        "gauge",
        "1 when the zone lists the pool IP (latest check).",
    );
    for s in status {
        for z in &s.zones {
            let listed = u8::from(z.status == "listed");
            crate::metrics::sample(
                &mut out,
                "outguard_dnsbl_listed",
                &[("ip", s.ip.as_str()), ("zone", z.zone.as_str())],
                listed,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ips_dedup() {
        let ip = |x: u8| IpAddr::from([127, 0, 0, x]);
        let pools = vec![
            PoolConfig {
                name: "regular".into(),
                source_ips: vec![ip(2), ip(5)],
                ehlo: None,
            },
            PoolConfig {
                name: "relay".into(),
                source_ips: vec![ip(5)],
                ehlo: None,
            },
        ];
        assert_eq!(
            pool_ips(&pools),
            vec![
                (ip(2), vec!["regular".to_string()]),
                (ip(5), vec!["regular".to_string(), "relay".to_string()])
            ]
        );
    }

    #[test]
    fn metrics_families() {
        let z = |zone: &str, status: &str| DnsblCheck {
            ip: "127.0.0.2".into(),
            zone: zone.into(),
            checked_at: 1,
            status: status.into(),
            code: None,
            reason: None,
        };
        let st = IpStatus {
            ip: "127.0.0.2".into(),
            pools: vec!["regular".into()],
            healthy: false,
            listed: true,
            zones: vec![
                z("bl.test", "listed"),
                z("zen.test", "error"),
                z("odd\"zone\\", "listed"),
            ],
        };
        let text = metrics_text(&[st]);
        // Escaped as every other label value (it replaced them with `_` before).
        assert!(text.contains("zone=\"odd\\\"zone\\\\\"} 1\n"), "{text}");
        assert!(
            text.contains("outguard_dnsbl_listed{ip=\"127.0.0.2\",zone=\"bl.test\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("outguard_dnsbl_listed{ip=\"127.0.0.2\",zone=\"zen.test\"} 0\n"),
            "{text}"
        );
    }
}
