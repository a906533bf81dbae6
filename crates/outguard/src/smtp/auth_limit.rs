//! AUTH brute-force protection: failed attempts per client IP within a window; past the limit
//! the client gets `454 4.7.0` without its credentials being checked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use outguard_types::model::Millis;

#[derive(Debug)]
pub struct AuthLimiter {
    max: u32,
    window_ms: i64,
    failures: Mutex<HashMap<IpAddr, Vec<Millis>>>,
}

impl AuthLimiter {
    pub fn new(max: u32, window: Duration) -> AuthLimiter {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        AuthLimiter {
            max,
            window_ms,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn live(v: &mut Vec<Millis>, now: Millis, window: i64) {
        v.retain(|&t| now - t < window);
    }

    pub fn is_locked(&self, ip: IpAddr, now: Millis) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&ip) {
            Some(v) => {
                Self::live(v, now, self.window_ms);
                v.len() as u64 >= u64::from(self.max)
            }
            None => false,
        }
    }

    pub fn record_failure(&self, ip: IpAddr, now: Millis) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            // Bounded memory under a distributed attack: forget the quiet ones.
            let w = self.window_ms;
            map.retain(|_, v| v.last().is_some_and(|&t| now - t < w));
        }
        let v = map.entry(ip).or_default();
        Self::live(v, now, self.window_ms);
        v.push(now);
    }

    pub fn record_success(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_within_the_window() {
        let l = AuthLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = [127, 0, 0, 9].into();
        for t in 0..3 {
            assert!(!l.is_locked(ip, t));
            l.record_failure(ip, t);
        }
        assert!(l.is_locked(ip, 10));
        assert!(!l.is_locked(ip, 60_003), "window slides");
    }
}
