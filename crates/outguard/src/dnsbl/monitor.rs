//! The monitor task: one round per `[dnsbl] interval` (±10 % jitter so nodes and restarts do not
//! query in lockstep), answers recorded in the store, state moved by [`IpTrack::observe`], and
//! the consequences: a newly listed `regular` IP is taken out of rotation at once unless it is
//! the last healthy regular IP (the alert says so, and later rounds retry the drain);
//! `high-risk` and `relay` IPs are only alerted. Alerts are service-wide: recorded, sent to the
//! webhooks and mailed to `[notifications] operator_recipients` within the daily cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_builder::MessageBuilder;
use outguard_policy::{Alert, AlertKind, CapDecision};
use outguard_types::model::Millis;

use super::track::{Change, IpTrack};
use super::{Checker, DnsblError, Zone, check_all, check_record, pool_ips};
use crate::server::Relay;
use crate::trace::now_ms;

pub struct Monitor {
    checker: Checker,
    zones: Vec<Zone>,
    interval: Duration,
    clear_checks: u32,
    tracks: HashMap<IpAddr, IpTrack>,
}

/// `interval` ± 10 %.
fn jittered(interval: Duration) -> Duration {
    let tenth = interval.as_millis() / 10;
    let span = u64::try_from(tenth * 2).unwrap_or(u64::MAX);
    if span == 0 {
        return interval;
    }
    let r = rand::random_range(0..=span);
    (interval + Duration::from_millis(r)).saturating_sub(Duration::from_millis(span / 2))
}

impl Monitor {
    /// Checks the zone list and builds the resolver (before anything binds).
    pub fn new(cfg: &outguard_types::config::Config) -> Result<Monitor, DnsblError> {
        Ok(Monitor {
            checker: Checker::new(&cfg.dns)?,
            zones: Zone::all(&cfg.dnsbl.zones)?,
            interval: cfg.dnsbl.interval.max(Duration::from_millis(200)),
            clear_checks: cfg.dnsbl.clear_checks,
            tracks: HashMap::new(),
        })
    }

    /// Run rounds until shutdown.
    pub async fn run(mut self, relay: Arc<Relay>) {
        if pool_ips(&relay.cfg.pools).is_empty() {
            return;
        }
        loop {
            self.round(&relay).await;
            tokio::select! {
                () = tokio::time::sleep(jittered(self.interval)) => {}
                () = relay.shutdown.stopped() => return,
            }
        }
    }

    async fn round(&mut self, relay: &Relay) {
        let ips = pool_ips(&relay.cfg.pools);
        let list: Vec<IpAddr> = ips.iter().map(|(ip, _)| *ip).collect();
        let results = check_all(&self.checker, &self.zones, &list).await;
        let now = now_ms();
        for (ip, pools) in &ips {
            let Some(round) = results.get(ip) else {
                continue;
            };
            for (zone, outcome) in round {
                if let Err(e) = relay
                    .store
                    .record_dnsbl_check(&check_record(*ip, zone, outcome, now))
                    .await
                {
                    tracing::error!(error = %e, "cannot record DNSBL check");
                }
            }
            let track = self.tracks.entry(*ip).or_default();
            let changes = track.observe(round, self.clear_checks);
            let regular = pools.iter().any(|p| p == "regular");
            act(relay, *ip, pools, regular, track, changes, now).await;
        }
    }
}

/// Drain / return the IP and raise the alerts a round's changes call for.
async fn act(
    relay: &Relay,
    ip: IpAddr,
    pools: &[String],
    regular: bool,
    track: &mut IpTrack,
    changes: Vec<Change>,
    now: Millis,
) {
    let mut note = String::new();
    if track.listed && regular && !track.drained {
        if last_healthy_regular(relay, ip) {
            note =
                "; NOT taken out of rotation: it is the last healthy IP of the regular pool".into();
            tracing::warn!(%ip, "listed regular IP kept in rotation: it is the last healthy one");
        } else {
            relay.queue.pools().set_healthy(ip, false);
            track.drained = true;
            note = "; taken out of the regular pool's rotation".into();
            tracing::warn!(%ip, "listed IP taken out of rotation");
        }
    } else if track.listed && !regular {
        note = format!(
            "; monitored only ({} pool IPs are never drained)",
            pools.join("/")
        );
    }
    for change in changes {
        match change {
            Change::Listed { zone, listing } => {
                let code = listing.code.unwrap_or_default();
                let reason = listing.reason.unwrap_or_default();
                let summary = format!(
                    "IP {ip} ({}) listed on {zone}: {code} {reason}{note}",
                    pools.join(", ")
                );
                service_alert(relay, AlertKind::IpListed, summary, now).await;
            }
            Change::Delisted => {
                if track.drained {
                    relay.queue.pools().set_healthy(ip, true);
                    track.drained = false;
                }
                let summary = format!(
                    "IP {ip} ({}) is no longer listed; back in rotation",
                    pools.join(", ")
                );
                service_alert(relay, AlertKind::IpDelisted, summary, now).await;
            }
        }
    }
}

/// Whether `ip` is the only regular IP still in rotation.
fn last_healthy_regular(relay: &Relay, ip: IpAddr) -> bool {
    let pools = relay.queue.pools();
    let others = pools
        .view()
        .into_iter()
        .filter(|p| p.name == "regular")
        .flat_map(|p| p.ips)
        .filter(|(other, healthy)| *other != ip && *healthy)
        .count();
    others == 0
}

/// Record a service-wide alert; within the daily cap also webhooks and the operators' email.
pub async fn service_alert(relay: &Relay, kind: AlertKind, summary: String, now: Millis) {
    let alert = Alert::new(kind, None, None, summary, Vec::new(), now);
    let decision = relay
        .alert_cap
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .admit("", kind, now);
    if let Err(e) = relay.store.insert_alert(&alert).await {
        tracing::error!(error = %e, "cannot record alert");
    }
    tracing::warn!(kind = kind.as_str(), summary = %alert.summary, "alert");
    if !matches!(decision, CapDecision::Notify { .. }) {
        return;
    }
    relay.webhooks.send(&alert);
    let to = &relay.cfg.notifications.operator_recipients;
    if to.is_empty() {
        return;
    }
    let host = &relay.cfg.server.hostname;
    let from = format!("postmaster@{host}");
    let body = MessageBuilder::new()
        .from(("Outguard", from.as_str()))
        .to(to.iter().map(String::as_str).collect::<Vec<_>>())
        .subject(format!(
            "Outguard {}: {}",
            kind.as_str(),
            alert.summary.chars().take(120).collect::<String>()
        ))
        .date(now.div_euclid(1000))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(format!(
            "{}\r\n\r\nAlert: {}\r\nHost: {host}\r\n",
            alert.summary,
            kind.as_str()
        ))
        .write_to_vec()
        .unwrap_or_default();
    relay
        .send_system_mail(&from, to, None, body, "service alert")
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let i = Duration::from_secs(100);
        for _ in 0..200 {
            let j = jittered(i);
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
