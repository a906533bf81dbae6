//! Outbound IP pools (SPEC §1 "pool"): each pool is a list of source addresses with an EHLO name.
//! A connection takes the next healthy address of its pool, round robin. The DNSBL monitor
//! marks addresses unhealthy (`set_healthy`); when a pool has no healthy address left it keeps
//! using all of them rather than stop delivering (the monitor never drains the last one anyway).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use outguard_types::config::PoolConfig;
use serde::Serialize;

struct Pool {
    ehlo: String,
    ips: Vec<IpAddr>,
    next: AtomicUsize,
}

/// The address and EHLO name chosen for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub pool: String,
    pub ip: IpAddr,
    pub ehlo: String,
}

/// A pool as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolView {
    pub name: String,
    pub ehlo: String,
    pub ips: Vec<(IpAddr, bool)>,
}

pub struct PoolSet {
    pools: HashMap<String, Pool>,
    unhealthy: RwLock<HashSet<IpAddr>>,
}

impl PoolSet {
    /// `default_ehlo` (the server hostname) is used for pools without their own.
    pub fn new(pools: &[PoolConfig], default_ehlo: &str) -> PoolSet {
        let pools = pools
            .iter()
            .map(|p| {
                let ehlo = p.ehlo.clone().unwrap_or_else(|| default_ehlo.to_string());
                (
                    p.name.clone(),
                    Pool {
                        ehlo,
                        ips: p.source_ips.clone(),
                        next: AtomicUsize::new(0),
                    },
                )
            })
            .collect();
        PoolSet {
            pools,
            unhealthy: RwLock::new(HashSet::new()),
        }
    }

    /// Take `ip` out of (false) or back into (true) rotation, in every pool that has it.
    pub fn set_healthy(&self, ip: IpAddr, healthy: bool) {
        let mut set = self
            .unhealthy
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if healthy {
            set.remove(&ip);
        } else {
            set.insert(ip);
        }
    }

    pub fn is_healthy(&self, ip: IpAddr) -> bool {
        !self
            .unhealthy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&ip)
    }

    /// Next source for `pool` (an unknown pool name falls back to `regular`).
    pub fn pick(&self, pool: &str) -> Option<Source> {
        let (name, p) = self
            .pools
            .get_key_value(pool)
            .or_else(|| self.pools.get_key_value("regular"))?;
        if p.ips.is_empty() {
            return None;
        }
        let bad = self
            .unhealthy
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let healthy: Vec<IpAddr> = p
            .ips
            .iter()
            .copied()
            .filter(|ip| !bad.contains(ip))
            .collect();
        let choices = if healthy.is_empty() { &p.ips } else { &healthy };
        let i = p.next.fetch_add(1, Ordering::Relaxed) % choices.len();
        Some(Source {
            pool: name.clone(),
            ip: choices[i],
            ehlo: p.ehlo.clone(),
        })
    }

    pub fn view(&self) -> Vec<PoolView> {
        let mut out: Vec<PoolView> = self
            .pools
            .iter()
            .map(|(name, p)| PoolView {
                name: name.clone(),
                ehlo: p.ehlo.clone(),
                ips: p.ips.iter().map(|ip| (*ip, self.is_healthy(*ip))).collect(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> PoolSet {
        let ip = |x: u8| IpAddr::from([127, 0, 0, x]);
        PoolSet::new(
            &[
                PoolConfig {
                    name: "regular".into(),
                    source_ips: vec![ip(2), ip(3)],
                    ehlo: Some("out.test".into()),
                },
                PoolConfig {
                    name: "high-risk".into(),
                    source_ips: vec![ip(9)],
                    ehlo: None,
                },
            ],
            "host.test",
        )
    }

    #[test]
    fn round_robin_over_healthy_ips() {
        let s = set();
        let picks: Vec<IpAddr> = (0..4)
            .filter_map(|_| s.pick("regular"))
            .map(|p| p.ip)
            .collect();
        let (a, b) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3]));
        assert_eq!(picks, vec![a, b, a, b]);
        s.set_healthy([127, 0, 0, 2].into(), false);
        assert!((0..4).all(|_| s.pick("regular").map(|p| p.ip) == Some([127, 0, 0, 3].into())));
        s.set_healthy([127, 0, 0, 3].into(), false);
        assert!(s.pick("regular").is_some(), "never stops delivering");
        s.set_healthy([127, 0, 0, 2].into(), true);
        assert_eq!(s.pick("regular").map(|p| p.ip), Some([127, 0, 0, 2].into()));
    }

    #[test]
    fn ehlo_and_fallback() {
        let s = set();
        assert_eq!(
            s.pick("high-risk").map(|p| p.ehlo),
            Some("host.test".into())
        );
        assert_eq!(s.pick("nope").map(|p| p.pool), Some("regular".into()));
    }
}
