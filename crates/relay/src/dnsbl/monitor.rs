//! The monitor task: one round per `[dnsbl] interval` (±10 % jitter so nodes and restarts do not
//! query in lockstep), answers recorded in the store, state moved by [`IpTrack::observe`], and
//! the consequences: a newly listed `regular` IP is taken out of rotation at once unless it is
//! the last healthy regular IP (the alert says so, and later rounds retry the drain);
//! `high-risk` and `relay` IPs are only alerted. Alerts are service-wide: recorded, sent to the
//! webhooks and mailed to `[notifications] operator_recipients` within the daily cap.
//!
//! The per-IP state is saved in the store after every round and [`Monitor::restore`]d at start
//! (before the listeners bind): a listed regular IP stays out of rotation across a restart until
//! it clears, and a listing already reported is not reported again. Alerts carry a dedup key
//! (kind, IP, zone, UTC day): when several nodes have the same pool IP, the first to record the
//! alert notifies and the others stay silent.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_builder::MessageBuilder;
use outguard_policy::alerts::dedup_key;
use outguard_policy::{Alert, AlertKind};
use outguard_store::{DnsblListing, DnsblTrack};
use outguard_types::model::Millis;

use super::{Checker, DnsblError, Zone, check_all, check_record, pool_ips};
use crate::server::Relay;
use outguard_policy::listing::{Change, IpTrack, Listing, ZoneAnswer};

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

    /// Load the state saved by the previous run for the IPs still configured, and take the
    /// listed regular IPs it had drained out of rotation again at once (before any new round).
    pub async fn restore(&mut self, relay: &Relay) -> Result<(), DnsblError> {
        let saved = relay.store.dnsbl_tracks().await?;
        for (ip, pools) in pool_ips(&relay.cfg.pools) {
            let Some(t) = saved.iter().find(|t| t.ip == ip.to_string()) else {
                continue;
            };
            let mut track = from_saved(t);
            let regular = pools.iter().any(|p| p == "regular");
            track.drained &= regular && track.listed;
            if track.drained {
                relay.queue.pools().set_healthy(ip, false);
                tracing::warn!(%ip, zones = ?track.zones.keys().collect::<Vec<_>>(),
                    "listed IP kept out of rotation (state from the previous run)");
            }
            self.tracks.insert(ip, track);
        }
        Ok(())
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
        let now = relay.clock.now_ms();
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
            let answers: Vec<(String, ZoneAnswer)> = round
                .iter()
                .map(|(zone, outcome)| (zone.clone(), outcome.answer()))
                .collect();
            let changes = track.observe(&answers, self.clear_checks);
            let regular = pools.iter().any(|p| p == "regular");
            act(relay, *ip, pools, regular, track, changes, now).await;
            if let Err(e) = relay
                .store
                .save_dnsbl_track(&to_saved(*ip, track, now))
                .await
            {
                tracing::error!(error = %e, %ip, "cannot save DNSBL state");
            }
        }
    }
}

fn from_saved(t: &DnsblTrack) -> IpTrack {
    IpTrack {
        listed: t.listed,
        zones: t
            .zones
            .iter()
            .map(|(z, l)| {
                let listing = Listing {
                    code: l.code.clone(),
                    reason: l.reason.clone(),
                };
                (z.clone(), listing)
            })
            .collect(),
        clean_streak: t.clean_streak,
        drained: t.drained,
    }
}

fn to_saved(ip: IpAddr, t: &IpTrack, now: Millis) -> DnsblTrack {
    DnsblTrack {
        ip: ip.to_string(),
        listed: t.listed,
        zones: t
            .zones
            .iter()
            .map(|(z, l)| {
                let listing = DnsblListing {
                    code: l.code.clone(),
                    reason: l.reason.clone(),
                };
                (z.clone(), listing)
            })
            .collect(),
        clean_streak: t.clean_streak,
        drained: t.drained,
        updated_at: now,
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
                let key = dedup_key(AlertKind::IpListed, &ip.to_string(), &zone, now);
                service_alert(relay, AlertKind::IpListed, summary, Some(key), now).await;
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
                let key = dedup_key(AlertKind::IpDelisted, &ip.to_string(), "", now);
                service_alert(relay, AlertKind::IpDelisted, summary, Some(key), now).await;
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

/// Raise a service-wide alert: recorded, then within the daily cap sent to webhooks and the
/// operators' email — by the effects outbox. With a `dedup_key` (see [`dedup_key`]) it is
/// recorded and sent once per cluster: a node that finds the key already stored (another node
/// saw the same listing first) does nothing more.
pub async fn service_alert(
    relay: &Relay,
    kind: AlertKind,
    summary: String,
    dedup: Option<String>,
    now: Millis,
) {
    let alert = Alert::new(kind, None, None, summary, Vec::new(), now);
    let to = &relay.cfg.notifications.operator_recipients;
    let mail = (!to.is_empty()).then(|| operator_mail(relay, &alert, to, now));
    relay
        .outbox
        .submit(crate::outbox::plan_service_alert(alert, dedup, mail))
        .await;
}

/// The operators' email about a service alert.
fn operator_mail(
    relay: &Relay,
    alert: &Alert,
    to: &[String],
    now: Millis,
) -> crate::outbox::SystemMail {
    let kind = alert.kind;
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
    crate::outbox::SystemMail {
        from,
        to: to.to_vec(),
        tenant: None,
        body,
        what: "service alert",
    }
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
