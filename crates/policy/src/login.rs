//! Login behaviour (issue 25 part 1): where an account authenticates from, per account, over
//! sliding windows. A botnet that owns a password logs in from hundreds of addresses, each
//! slowly enough to stay under every rate limit (a real case: 7,531 logins from 342 IPs); a
//! person logs in from a phone, a home and an office. What tells them apart is the number of
//! distinct networks, not the rate.
//!
//! Each AUTH success is recorded ([`record`]) as the client's narrow network (IPv4 /24, IPv6
//! /48) and wide network (IPv4 /16, IPv6 /32) in the signal store's timed lists (one entry per
//! network with its latest time, at most [`CAP`] per list, expiring with the window; both
//! backends): the narrow networks of the last 10 minutes, hour, 24 hours and 30 days, the wide
//! ones of 24 hours. A narrow network absent from the 30-day list is *first seen*; those are
//! counted per hour for 24 hours. [`judge`] holds the counts to `[login_behaviour]`; a count
//! that reaches its line is a crossing, named with its numbers in the alert
//! (`suspicious_login_pattern`), the restriction reason and the trace of the session's
//! messages (`SUSPICIOUS_LOGIN_PATTERN`).

use std::net::{IpAddr, Ipv6Addr};

use outguard_types::config::LoginBehaviourConfig;
use outguard_types::model::Millis;

use crate::counters::{CounterError, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::reply::Measure;
use crate::signals::SignalStore;

pub const SUSPICIOUS_LOGIN_PATTERN: &str = "SUSPICIOUS_LOGIN_PATTERN";

/// Networks kept per account and list: above every threshold the config allows
/// ([`LoginBehaviourConfig::MAX_THRESHOLD`]), so a count is exact up to any line.
pub const CAP: usize = 512;
/// The burst window.
pub const BURST_MS: i64 = 10 * MINUTE_MS;
/// "First seen" = not seen in this long.
pub const FIRST_SEEN_MS: i64 = 30 * DAY_MS;

/// A client's networks, as written in the store and the trace (`198.51.100.0/24`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks {
    /// IPv4 /24, IPv6 /48.
    pub narrow: String,
    /// IPv4 /16, IPv6 /32.
    pub wide: String,
}

/// The networks of `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address).
pub fn networks(ip: IpAddr) -> Networks {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(a) => {
            let [o0, o1, o2, _] = a.octets();
            Networks {
                narrow: format!("{o0}.{o1}.{o2}.0/24"),
                wide: format!("{o0}.{o1}.0.0/16"),
            }
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            Networks {
                narrow: format!("{}/48", Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)),
                wide: format!("{}/32", Ipv6Addr::new(s[0], s[1], 0, 0, 0, 0, 0, 0)),
            }
        }
    }
}

/// The counts one AUTH success leaves, this login included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFacts {
    /// Distinct narrow networks in 10 minutes / 1 hour / 24 hours.
    pub burst: u64,
    pub hour: u64,
    pub day: u64,
    /// Distinct wide networks in 24 hours.
    pub wide_day: u64,
    /// Narrow networks first seen within the last 24 hours.
    pub new_day: u64,
    /// This login's network was first seen now.
    pub first_seen: bool,
}

fn key(account: &str, what: &str) -> String {
    format!("login:a:{}:{what}", account.to_ascii_lowercase())
}

/// Add `member` to one timed list and return the distinct members it holds now.
async fn distinct(
    store: &dyn SignalStore,
    key: String,
    member: &str,
    now: Millis,
    window_ms: i64,
) -> Result<(u64, bool), CounterError> {
    let before = store
        .near(std::slice::from_ref(&key), member, now, window_ms, CAP)
        .await?;
    let known = before.iter().any(|m| m == member);
    let n = before.len() as u64 + u64::from(!known);
    Ok((n.min(CAP as u64), known))
}

/// Record one AUTH success of `account` from `ip` and return the counts.
pub async fn record(
    store: &dyn SignalStore,
    account: &str,
    ip: IpAddr,
    now: Millis,
) -> Result<LoginFacts, CounterError> {
    let net = networks(ip);
    let (burst, _) = distinct(store, key(account, "n:10m"), &net.narrow, now, BURST_MS).await?;
    let (hour, _) = distinct(store, key(account, "n:1h"), &net.narrow, now, HOUR_MS).await?;
    let (day, _) = distinct(store, key(account, "n:24h"), &net.narrow, now, DAY_MS).await?;
    let (wide_day, _) = distinct(store, key(account, "w:24h"), &net.wide, now, DAY_MS).await?;
    let (_, known) = distinct(
        store,
        key(account, "n:30d"),
        &net.narrow,
        now,
        FIRST_SEEN_MS,
    )
    .await?;
    let new_hours = store
        .hourly(&key(account, "new"), u64::from(!known), now, 24)
        .await?;
    Ok(LoginFacts {
        burst,
        hour,
        day,
        wide_day,
        new_day: new_hours.iter().sum(),
        first_seen: !known,
    })
}

/// The counts that reached their line, as measures (empty: nothing suspicious).
pub fn judge(f: &LoginFacts, cfg: &LoginBehaviourConfig) -> Vec<Measure> {
    [
        (
            "distinct /24 networks in 10 minutes",
            f.burst,
            cfg.burst_networks,
        ),
        (
            "distinct /24 networks in 1 hour",
            f.hour,
            cfg.networks_per_hour,
        ),
        (
            "distinct /24 networks in 24 hours",
            f.day,
            cfg.networks_per_day,
        ),
        (
            "distinct /16 networks in 24 hours",
            f.wide_day,
            cfg.wide_networks_per_day,
        ),
        (
            "first-seen /24 networks in 24 hours",
            f.new_day,
            cfg.new_networks_per_day,
        ),
    ]
    .into_iter()
    .filter(|(_, n, line)| *n >= u64::from(*line))
    .map(|(what, n, line)| Measure::new(format!("AUTH successes from {what}"), n, u64::from(line)))
    .collect()
}

/// The sentence for the alert and the trace: the signal and its numbers.
pub fn describe(account: &str, ip: IpAddr, crossed: &[Measure]) -> String {
    let what: Vec<String> = crossed
        .iter()
        .map(|m| format!("{} {} (line {})", m.count, m.what, m.limit))
        .collect();
    format!(
        "{SUSPICIOUS_LOGIN_PATTERN}: {account} logged in from many networks, latest {}: {}",
        networks(ip).narrow,
        what.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_of_addresses() {
        let n = networks("198.51.100.77".parse().unwrap());
        assert_eq!(
            (n.narrow.as_str(), n.wide.as_str()),
            ("198.51.100.0/24", "198.51.0.0/16")
        );
        let n = networks("2001:db8:1234:5678::1".parse().unwrap());
        assert_eq!(
            (n.narrow.as_str(), n.wide.as_str()),
            ("2001:db8:1234::/48", "2001:db8::/32")
        );
        let n = networks("::ffff:203.0.113.9".parse().unwrap());
        assert_eq!(n.narrow, "203.0.113.0/24");
    }

    #[test]
    fn the_lines_are_reached_not_passed() {
        let cfg = LoginBehaviourConfig::default();
        let normal = LoginFacts {
            burst: 2,
            hour: 3,
            day: 3,
            wide_day: 3,
            new_day: 3,
            first_seen: false,
        };
        assert!(judge(&normal, &cfg).is_empty());
        let spray = LoginFacts { hour: 20, ..normal };
        let m = judge(&spray, &cfg);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].count, m[0].limit), (20, 20));
        let text = describe("bob@a.example", "127.20.0.1".parse().unwrap(), &m);
        assert!(
            text.contains("20 AUTH successes from distinct /24 networks in 1 hour (line 20)"),
            "{text}"
        );
        assert!(text.contains("127.20.0.0/24"), "{text}");
    }
}
