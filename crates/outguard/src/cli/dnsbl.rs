//! `outguard dnsbl check [IP]` (SPEC §4, §8): one DNSBL round now, without a running server —
//! the config's pool IPs (or the one given) on the config's zones through the config's
//! resolver; every answer is recorded in the store's history and printed as a table.
//! It changes no rotation: draining is the running monitor's job.

use std::net::IpAddr;

use clap::Subcommand;
use outguard_store::{DnsblCheck, Store};
use outguard_types::config::Config;

use super::UsageError;
use super::output::{print_list, time};
use outguard_relay::dnsbl::{Checker, Zone, check_all, check_record, pool_ips};
use outguard_types::time::now_ms;

#[derive(Debug, Subcommand)]
pub enum DnsblCmd {
    /// Check every pool IP (or IP) on the configured zones now and print the table.
    Check {
        /// One address (need not be a pool IP).
        ip: Option<String>,
    },
}

pub async fn run(cmd: DnsblCmd, cfg: &Config, store: &Store, json: bool) -> anyhow::Result<u8> {
    let DnsblCmd::Check { ip } = cmd;
    let pools = pool_ips(&cfg.pools);
    let ips: Vec<IpAddr> = match ip {
        Some(s) => vec![
            s.trim()
                .parse()
                .map_err(|_| UsageError(format!("`{s}` is not an IP address")))?,
        ],
        None => pools.iter().map(|(ip, _)| *ip).collect(),
    };
    if ips.is_empty() {
        return Err(UsageError("no pool IPs configured and no IP given".into()).into());
    }
    let zones = Zone::all(&cfg.dnsbl.zones).map_err(|e| UsageError(e.to_string()))?;
    let checker = Checker::new(&cfg.dns)?;
    let results = check_all(&checker, &zones, &ips).await;
    let now = now_ms();
    let mut records: Vec<DnsblCheck> = Vec::new();
    for (ip, round) in &results {
        for (zone, outcome) in round {
            let rec = check_record(*ip, zone, outcome, now);
            store.record_dnsbl_check(&rec).await?;
            records.push(rec);
        }
    }
    let pools_of = |ip: &str| {
        let p = pools.iter().find(|(i, _)| i.to_string() == ip);
        p.map_or_else(|| "-".to_string(), |(_, names)| names.join(","))
    };
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.ip.clone(),
                pools_of(&r.ip),
                r.zone.clone(),
                r.status.clone(),
                r.code.clone().unwrap_or_else(|| "-".into()),
                r.reason.clone().unwrap_or_default(),
                time(r.checked_at),
            ]
        })
        .collect();
    print_list(
        json,
        &records,
        &["IP", "POOLS", "ZONE", "STATUS", "CODE", "REASON", "CHECKED"],
        rows,
    )?;
    Ok(0)
}
