//! AUTH guessing bounds (SPEC §9 "Guessing and hogging"): failed attempts are counted per client
//! address (IPv6 per /64) and per account (from any address) over a sliding window; past either
//! bound that address or that account answers `454 4.7.0` without a password being checked,
//! until the lockout has passed.
//!
//! Decisions recorded here:
//! - A success clears nothing. The per-address count holds failures for *other* accounts too
//!   (an attacker's own good login must not reset the count of its guesses at bob), and the
//!   per-account count must not be reset by the real owner's logins between guesses. Failures
//!   simply age out of the window.
//! - Attempts refused while locked are not counted (no password was checked) and do not extend
//!   the lockout, so the lockout ends when the configured time says.
//! - Memory is bounded: each map holds at most [`MAX_TRACKED`] keys. When full, keys with no
//!   failure left in the window and no lock are pruned; if still full, the unlocked keys with
//!   the fewest (then oldest) failures are evicted, so a spray of random usernames (one failure
//!   each) cannot push out the count of an account under real attack.
//! - Accounts are keyed by a 64-bit hash of the lower-cased username under the process's random
//!   hasher seed: a fixed 8 bytes per key however long the guessed names are.
//! - Time is a parameter (`now`, milliseconds): the logic is pure and tested as vectors.
//! - Each node keeps its own counts (cluster mode does not share them).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher as _, Hash};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use outguard_proto::Reply;
use outguard_types::config::ListenersConfig;
use outguard_types::model::Millis;

use crate::server::conn_limit::client_key;

/// Keys each map may hold (addresses; accounts).
pub const MAX_TRACKED: usize = 100_000;

/// The bounds, from `[listeners]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimits {
    pub per_ip: u32,
    pub per_account: u32,
    pub window: Duration,
    pub lockout: Duration,
}

impl AuthLimits {
    pub fn from_config(l: &ListenersConfig) -> AuthLimits {
        AuthLimits {
            per_ip: l.max_auth_failures,
            per_account: l.max_auth_failures_per_account,
            window: l.auth_failure_window,
            lockout: l.auth_lockout,
        }
    }
}

/// Why an attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    Ip,
    Account,
}

impl Locked {
    pub fn reply(self) -> Reply {
        match self {
            Locked::Ip => Reply::new(
                454,
                "4.7.0",
                "Too many failed authentication attempts from your address, try again later",
            ),
            Locked::Account => Reply::new(
                454,
                "4.7.0",
                "Too many failed authentication attempts for this account, try again later",
            ),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One key's recent failures (at most `max - 1` of them: the `max`-th locks and clears them).
#[derive(Debug, Default)]
struct Entry {
    failures: VecDeque<Millis>,
    /// Locked while `now < locked_until`.
    locked_until: Option<Millis>,
}

impl Entry {
    fn is_locked(&self, now: Millis) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }

    fn forget_old(&mut self, now: Millis, window: i64) {
        while self.failures.front().is_some_and(|&t| now - t >= window) {
            self.failures.pop_front();
        }
        if self.locked_until.is_some_and(|t| now >= t) {
            self.locked_until = None;
        }
    }

    fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.locked_until.is_none()
    }
}

/// Failures per key with a bound, a window and a lockout.
#[derive(Debug)]
struct Tracker<K> {
    max: u32,
    window: i64,
    lockout: i64,
    cap: usize,
    entries: HashMap<K, Entry>,
    /// Set when every key held is locked: until the first lock ends, no room can be made, so
    /// new keys are refused without scanning the map again (a flood from fresh addresses must
    /// not cost a full scan per attempt).
    full_until: Option<Millis>,
}

impl<K: Hash + Eq + Copy> Tracker<K> {
    fn new(max: u32, limits: &AuthLimits, cap: usize) -> Tracker<K> {
        Tracker {
            max,
            window: ms(limits.window),
            lockout: ms(limits.lockout),
            cap,
            entries: HashMap::new(),
            full_until: None,
        }
    }

    fn is_locked(&mut self, k: K, now: Millis) -> bool {
        match self.entries.get_mut(&k) {
            Some(e) => {
                e.forget_old(now, self.window);
                e.is_locked(now)
            }
            None => false,
        }
    }

    /// Count one failure; true when it is the one that locks `k`.
    fn fail(&mut self, k: K, now: Millis) -> bool {
        if !self.entries.contains_key(&k) && !self.make_room(now) {
            // Full of locked keys: this one goes uncounted (the other bound still holds).
            return false;
        }
        let e = self.entries.entry(k).or_default();
        e.forget_old(now, self.window);
        if e.is_locked(now) {
            return false;
        }
        e.failures.push_back(now);
        if e.failures.len() as u64 >= u64::from(self.max) {
            e.failures.clear();
            e.locked_until = Some(now.saturating_add(self.lockout));
            return true;
        }
        false
    }

    /// Make space for one more key; false when every key held is locked.
    fn make_room(&mut self, now: Millis) -> bool {
        if self.entries.len() < self.cap {
            return true;
        }
        if self.full_until.is_some_and(|t| now < t) {
            return false;
        }
        let window = self.window;
        self.entries.retain(|_, e| {
            e.forget_old(now, window);
            !e.is_empty()
        });
        if self.entries.len() < self.cap {
            return true;
        }
        // Evict a tenth at once so a spray pays this sort once per many insertions.
        let mut victims: Vec<(usize, Millis, K)> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.is_locked(now))
            .map(|(k, e)| {
                (
                    e.failures.len(),
                    e.failures.back().copied().unwrap_or(0),
                    *k,
                )
            })
            .collect();
        if victims.is_empty() {
            self.full_until = self.entries.values().filter_map(|e| e.locked_until).min();
            return false;
        }
        let n = (self.cap / 10).max(1).min(victims.len());
        victims.select_nth_unstable_by_key(n - 1, |v| (v.0, v.1));
        for (_, _, k) in &victims[..n] {
            self.entries.remove(k);
        }
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[derive(Debug)]
struct State {
    ips: Tracker<IpAddr>,
    accounts: Tracker<u64>,
}

#[derive(Debug)]
pub struct AuthLimiter {
    hasher: RandomState,
    state: Mutex<State>,
}

impl AuthLimiter {
    pub fn new(limits: AuthLimits) -> AuthLimiter {
        AuthLimiter::with_capacity(limits, MAX_TRACKED)
    }

    pub fn with_capacity(limits: AuthLimits, cap: usize) -> AuthLimiter {
        AuthLimiter {
            hasher: RandomState::new(),
            state: Mutex::new(State {
                ips: Tracker::new(limits.per_ip, &limits, cap),
                accounts: Tracker::new(limits.per_account, &limits, cap),
            }),
        }
    }

    fn account_key(&self, username: &str) -> u64 {
        self.hasher.hash_one(username.to_lowercase())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counts that are still counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May `username` try a password from `ip` now?
    pub fn check(&self, ip: IpAddr, username: &str, now: Millis) -> Result<(), Locked> {
        let account = self.account_key(username);
        let mut st = self.state();
        if st.ips.is_locked(client_key(ip), now) {
            return Err(Locked::Ip);
        }
        if st.accounts.is_locked(account, now) {
            return Err(Locked::Account);
        }
        Ok(())
    }

    /// Count a failed attempt against both the address and the account; returns the lock it
    /// set, if any (for the log). While either is locked nothing is counted: no password was
    /// checked (callers ask [`AuthLimiter::check`] first).
    pub fn record_failure(&self, ip: IpAddr, username: &str, now: Millis) -> Option<Locked> {
        let account = self.account_key(username);
        let mut st = self.state();
        let key = client_key(ip);
        if st.ips.is_locked(key, now) || st.accounts.is_locked(account, now) {
            return None;
        }
        let ip_locked = st.ips.fail(key, now);
        let account_locked = st.accounts.fail(account, now);
        if ip_locked {
            Some(Locked::Ip)
        } else if account_locked {
            Some(Locked::Account)
        } else {
            None
        }
    }

    /// Keys held (addresses, accounts): for tests and the memory bound.
    #[cfg(test)]
    pub fn tracked(&self) -> (usize, usize) {
        let st = self.state();
        (st.ips.len(), st.accounts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn limits() -> AuthLimits {
        AuthLimits {
            per_ip: 10,
            per_account: 30,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }

    fn ip(n: u8) -> IpAddr {
        [127, 0, 0, n].into()
    }

    /// One step of a vector: at `t` ms, `Fail` counts a failed attempt; `Expect` asserts what
    /// `check` answers for that address and user.
    enum Step {
        Fail(i64, u8, &'static str),
        Expect(i64, u8, &'static str, Result<(), Locked>),
    }
    use Step::*;

    fn run(name: &str, steps: &[Step]) {
        let l = AuthLimiter::new(limits());
        for (i, s) in steps.iter().enumerate() {
            match s {
                Fail(t, a, u) => {
                    l.record_failure(ip(*a), u, *t);
                }
                Expect(t, a, u, want) => {
                    assert_eq!(l.check(ip(*a), u, *t), *want, "{name}: step {i}")
                }
            }
        }
    }

    fn fails(from: i64, n: usize, a: u8, u: &'static str) -> Vec<Step> {
        (0..n).map(|i| Fail(from + i as i64, a, u)).collect()
    }

    #[test]
    fn vectors() {
        // The attack: 9 wrong for bob, alice's right password, repeat. Success clears
        // nothing, so the 10th failure locks the address, for alice too.
        let mut v = fails(0, 9, 1, "bob");
        v.push(Expect(100, 1, "alice", Ok(())));
        v.push(Fail(200, 1, "bob"));
        v.push(Expect(201, 1, "alice", Err(Locked::Ip)));
        v.push(Expect(201, 1, "bob", Err(Locked::Ip)));
        v.push(Expect(201, 2, "bob", Ok(())));
        v.push(Expect(200 + 15 * MIN - 1, 1, "alice", Err(Locked::Ip)));
        v.push(Expect(200 + 15 * MIN, 1, "alice", Ok(())));
        run("ip lock", &v);

        // 30 failures for bob from 5 addresses (6 each, under the address bound): the account
        // locks, from any address, and only for bob.
        let mut v = Vec::new();
        for a in 1..=5u8 {
            v.extend(fails(i64::from(a) * 1000, 6, a, "bob@a.example"));
        }
        v.push(Expect(6000, 9, "BOB@a.example", Err(Locked::Account)));
        v.push(Expect(6000, 9, "alice@a.example", Ok(())));
        v.push(Expect(6000, 1, "alice@a.example", Ok(())));
        v.push(Expect(5005 + 15 * MIN, 9, "bob@a.example", Ok(())));
        run("account lock", &v);

        // The window slides: 9 failures, 15 minutes pass, 9 more: never 10 in a window.
        let mut v = fails(0, 9, 1, "x");
        v.extend(fails(15 * MIN, 9, 1, "y"));
        v.push(Expect(15 * MIN + 10, 1, "z", Ok(())));
        v.push(Fail(15 * MIN + 11, 1, "z"));
        v.push(Expect(15 * MIN + 12, 1, "z", Err(Locked::Ip)));
        run("sliding window", &v);

        // After a lockout the count starts afresh: one more failure does not lock again.
        let mut v = fails(0, 10, 1, "x");
        v.push(Fail(15 * MIN + 9, 1, "x"));
        v.push(Expect(15 * MIN + 10, 1, "x", Ok(())));
        run("fresh after lockout", &v);

        // Attempts refused while locked neither count nor extend the lockout.
        let mut v = fails(0, 10, 1, "x");
        v.extend(fails(MIN, 50, 1, "x"));
        v.push(Expect(15 * MIN + 9, 1, "x", Ok(())));
        run("locked attempts do not count", &v);
    }

    #[test]
    fn a_spray_of_random_usernames_stays_bounded_and_keeps_the_real_target() {
        let l = AuthLimiter::with_capacity(limits(), 1000);
        // bob: 29 failures from 29 addresses in 10.0.0.0/8.
        for i in 0..29u32 {
            l.record_failure(
                IpAddr::from(std::net::Ipv4Addr::from((10u32 << 24) | i)),
                "bob",
                i64::from(i),
            );
        }
        // A spray: 50,000 random names from 5,000 addresses, 10 each.
        for i in 0..50_000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from((11u32 << 24) | (i / 10)));
            l.record_failure(a, &format!("user{i}"), 100 + i64::from(i) / 100);
        }
        let (ips, accounts) = l.tracked();
        assert!(ips <= 1000 && accounts <= 1000, "{ips} {accounts}");
        // bob's 29 were kept: the 30th locks him.
        assert_eq!(
            l.record_failure([12, 0, 0, 1].into(), "bob", 1000),
            Some(Locked::Account)
        );
        assert_eq!(
            l.check([12, 0, 0, 2].into(), "bob", 1001),
            Err(Locked::Account)
        );
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let l = AuthLimiter::new(limits());
        for i in 0..10u16 {
            let a: IpAddr = format!("2001:db8::{i:x}").parse().expect("v6");
            l.record_failure(a, "x", i64::from(i));
        }
        let other: IpAddr = "2001:db8::ffff:1".parse().expect("v6");
        assert_eq!(l.check(other, "y", 20), Err(Locked::Ip));
        let elsewhere: IpAddr = "2001:db8:0:1::1".parse().expect("v6");
        assert_eq!(l.check(elsewhere, "y", 20), Ok(()));
    }
}
