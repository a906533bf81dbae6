//! Concurrent connections per client address (SPEC §9 "hogging"): the SMTP listeners and the
//! HTTP listener each keep one [`PerIpLimit`]; a connection holds an [`IpPermit`] while it is
//! open. The map only holds addresses with open connections, so it is bounded by the
//! listener's own connection cap.
//!
//! Addresses are compared by [`client_key`]: an IPv4-mapped IPv6 address is its IPv4 address,
//! and an IPv6 address counts per /64 (one subscriber's usual allocation: counting per /128
//! would give a single host 2^64 budgets).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The address a per-client bound counts against.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = !0u128 << 64;
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
    }
}

#[derive(Debug, Clone)]
pub struct PerIpLimit {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection counted against its client address; released on drop.
#[derive(Debug)]
pub struct IpPermit {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIpLimit {
    pub fn new(max: usize) -> PerIpLimit {
        PerIpLimit {
            max,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A permit for one more connection from `ip`, or `None` when it already has `max` open.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpPermit> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpPermit {
            key,
            open: self.open.clone(),
        })
    }

    /// Connections open from `ip` (tests).
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }

    /// Addresses with open connections (tests: the map does not keep closed ones).
    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_forgets_closed_ones() {
        let l = PerIpLimit::new(2);
        let a: IpAddr = [127, 0, 0, 5].into();
        let b: IpAddr = [127, 0, 0, 6].into();
        let p1 = l.try_acquire(a).expect("1st");
        let p2 = l.try_acquire(a).expect("2nd");
        assert!(l.try_acquire(a).is_none(), "3rd from the same address");
        let q = l.try_acquire(b).expect("another address");
        drop(p1);
        let p3 = l.try_acquire(a).expect("a slot came back");
        drop((p2, p3, q));
        assert_eq!(l.addresses(), 0);
        assert_eq!(l.open_from(a), 0);
    }

    #[test]
    fn keys() {
        let k = |s: &str| client_key(s.parse().expect("ip")).to_string();
        assert_eq!(k("127.0.0.5"), "127.0.0.5");
        assert_eq!(k("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(k("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(k("::1"), "::");
    }
}
