//! The embedded backend of [`outguard_policy::SignalStore`] (issue 19): sender reputation,
//! hourly buckets, remembered recipient domains and the campaign lists, in process memory beside
//! [`MemoryCounters`]' windows and saved in the same snapshot, so a restart keeps them.
//!
//! Bounded: a bucket series keeps at most the hours asked of it, a domain set at most its cap,
//! a campaign list at most its cap and only its window; [`SignalState::sweep`] drops what has
//! expired. One mutex: every operation is a few map lookups, never held across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use outguard_policy::SignalStore;
use outguard_policy::counters::CounterFuture;
use outguard_policy::signals::hour_of;
use outguard_policy::signals::reputation::REPUTATION_TTL_MS;
use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::memory_counters::MemoryCounters;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Buckets {
    /// `hour → units`, at most `keep` hours back from the latest.
    hours: BTreeMap<i64, u64>,
    keep: u32,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Seen {
    expires: Millis,
    members: HashSet<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Timed {
    window_ms: i64,
    entries: VecDeque<(Millis, String)>,
}

/// Everything the signals keep (serialised into the counter snapshot).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SignalState {
    reputation: HashMap<String, u32>,
    /// When each reputation state expires ([`REPUTATION_TTL_MS`] after its latest outcome, as
    /// on Redis). A snapshot of an older release has none: those get one at their next
    /// outcome or sweep.
    #[serde(default)]
    reputation_expires: HashMap<String, Millis>,
    buckets: HashMap<String, Buckets>,
    /// `key → (latest mark, when it is forgotten)`.
    #[serde(default)]
    marks: HashMap<String, (Millis, Millis)>,
    seen: HashMap<String, Seen>,
    timed: HashMap<String, Timed>,
}

impl SignalState {
    /// The reputation state of `key` at `now` (an expired one is dropped).
    fn peek(&mut self, key: &str, now: Millis) -> Option<u32> {
        if self
            .reputation_expires
            .get(key)
            .is_some_and(|at| *at <= now)
        {
            self.reputation.remove(key);
            self.reputation_expires.remove(key);
        }
        self.reputation.get(key).copied()
    }

    fn reputation(&mut self, key: &str, spam: bool, clear_after: u32, now: Millis) -> Option<u32> {
        let before = self.peek(key, now);
        let after = match (spam, before) {
            (true, _) => Some(0),
            (false, Some(k)) if k + 1 >= clear_after => None,
            (false, Some(k)) => Some(k + 1),
            (false, None) => return None,
        };
        match after {
            Some(k) => {
                self.reputation.insert(key.to_string(), k);
                self.reputation_expires
                    .insert(key.to_string(), now.saturating_add(REPUTATION_TTL_MS));
            }
            None => {
                self.reputation.remove(key);
                self.reputation_expires.remove(key);
            }
        }
        before
    }

    fn hourly(&mut self, key: &str, n: u64, now: Millis, hours: u32) -> Vec<u64> {
        let hour = hour_of(now);
        let b = self.buckets.entry(key.to_string()).or_default();
        b.keep = b.keep.max(hours);
        if n > 0 {
            *b.hours.entry(hour).or_default() += n;
        }
        let latest = b.hours.last_key_value().map_or(hour, |(h, _)| *h).max(hour);
        let keep = i64::from(b.keep.max(1));
        b.hours.retain(|h, _| *h > latest - keep);
        let mut out = vec![0u64; hours.max(1) as usize];
        for (h, units) in &b.hours {
            let back = hour - h;
            if (0..i64::from(hours.max(1))).contains(&back) {
                out[back as usize] = *units;
            }
        }
        out
    }

    fn first_seen(
        &mut self,
        key: &str,
        members: &[String],
        now: Millis,
        ttl_ms: i64,
        cap: usize,
    ) -> u32 {
        let set = self.seen.entry(key.to_string()).or_default();
        if set.expires <= now {
            set.members.clear();
        }
        set.expires = now.saturating_add(ttl_ms);
        let mut new = 0;
        for m in members {
            if set.members.contains(m) {
                continue;
            }
            new += 1;
            if set.members.len() < cap {
                set.members.insert(m.clone());
            }
        }
        new
    }

    fn mark(&mut self, key: &str, at: Millis, ttl_ms: i64) {
        let m = self.marks.entry(key.to_string()).or_insert((at, 0));
        m.0 = m.0.max(at);
        m.1 = m.0.saturating_add(ttl_ms);
    }

    fn last_mark(&mut self, key: &str, now: Millis) -> Option<Millis> {
        match self.marks.get(key) {
            Some((at, until)) if *until > now => Some(*at),
            Some(_) => {
                self.marks.remove(key);
                None
            }
            None => None,
        }
    }

    fn near(
        &mut self,
        keys: &[String],
        member: &str,
        now: Millis,
        window_ms: i64,
        cap: usize,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for key in keys {
            let list = self.timed.entry(key.clone()).or_default();
            list.window_ms = list.window_ms.max(window_ms);
            let start = now.saturating_sub(window_ms);
            while list.entries.front().is_some_and(|(at, _)| *at <= start) {
                list.entries.pop_front();
            }
            // One entry per member, as in the Redis sorted set: sending again moves the member
            // to the back with the new time instead of adding a copy. (Copies made every
            // message from one sender re-read and re-hash up to `cap` identical strings.)
            let mut again = None;
            for (i, (_, m)) in list.entries.iter().enumerate() {
                if m == member {
                    again = Some(i);
                }
                if !seen.contains(m.as_str()) {
                    seen.insert(m.clone());
                    out.push(m.clone());
                }
            }
            if let Some(i) = again {
                list.entries.remove(i);
            }
            list.entries.push_back((now, member.to_string()));
            while list.entries.len() > cap.max(1) {
                list.entries.pop_front();
            }
        }
        out
    }

    /// Drop what has expired by `now` (empty bucket series, expired sets, old list entries).
    pub fn sweep(&mut self, now: Millis) {
        let hour = hour_of(now);
        for k in self.reputation.keys() {
            self.reputation_expires
                .entry(k.clone())
                .or_insert(now.saturating_add(REPUTATION_TTL_MS));
        }
        self.reputation_expires.retain(|_, at| *at > now);
        let live = &self.reputation_expires;
        self.reputation.retain(|k, _| live.contains_key(k));
        self.buckets.retain(|_, b| {
            b.hours
                .last_key_value()
                .is_some_and(|(h, _)| *h > hour - i64::from(b.keep.max(1)))
        });
        self.marks.retain(|_, (_, until)| *until > now);
        self.seen.retain(|_, s| s.expires > now);
        self.timed.retain(|_, t| {
            let start = now.saturating_sub(t.window_ms);
            t.entries.retain(|(at, _)| *at > start);
            !t.entries.is_empty()
        });
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> CounterFuture<'a, T> {
    Box::pin(std::future::ready(Ok(v)))
}

impl SignalStore for MemoryCounters {
    fn reputation<'a>(
        &'a self,
        key: &'a str,
        spam: bool,
        clear_after: u32,
        now: Millis,
    ) -> CounterFuture<'a, Option<u32>> {
        ready(self.signals().reputation(key, spam, clear_after, now))
    }

    fn clear_reputation<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool> {
        let mut s = self.signals();
        s.reputation_expires.remove(key);
        ready(s.reputation.remove(key).is_some())
    }

    fn peek_reputation<'a>(&'a self, key: &'a str, now: Millis) -> CounterFuture<'a, Option<u32>> {
        ready(self.signals().peek(key, now))
    }

    fn hourly<'a>(
        &'a self,
        key: &'a str,
        n: u64,
        now: Millis,
        hours: u32,
    ) -> CounterFuture<'a, Vec<u64>> {
        ready(self.signals().hourly(key, n, now, hours))
    }

    fn first_seen<'a>(
        &'a self,
        key: &'a str,
        members: &'a [String],
        now: Millis,
        ttl_ms: i64,
        cap: usize,
    ) -> CounterFuture<'a, u32> {
        ready(self.signals().first_seen(key, members, now, ttl_ms, cap))
    }

    fn mark<'a>(&'a self, key: &'a str, at: Millis, ttl_ms: i64) -> CounterFuture<'a, ()> {
        self.signals().mark(key, at, ttl_ms);
        ready(())
    }

    fn last_mark<'a>(&'a self, key: &'a str, now: Millis) -> CounterFuture<'a, Option<Millis>> {
        ready(self.signals().last_mark(key, now))
    }

    fn near<'a>(
        &'a self,
        keys: &'a [String],
        member: &'a str,
        now: Millis,
        window_ms: i64,
        cap: usize,
    ) -> CounterFuture<'a, Vec<String>> {
        ready(self.signals().near(keys, member, now, window_ms, cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn buckets_roll_by_hour_and_stay_bounded() {
        let mut s = SignalState::default();
        assert_eq!(s.hourly("k", 2, 10, 3), vec![2, 0, 0]);
        assert_eq!(s.hourly("k", 3, 20, 3), vec![5, 0, 0]);
        assert_eq!(s.hourly("k", 1, H + 5, 3), vec![1, 5, 0]);
        assert_eq!(s.hourly("k", 1, 5 * H, 3), vec![1, 0, 0]);
        assert!(s.buckets["k"].hours.len() <= 3);
        s.sweep(9 * H);
        assert!(s.buckets.is_empty());
    }

    #[test]
    fn near_lists_keep_one_entry_per_member() {
        let mut s = SignalState::default();
        let k = vec!["n".to_string()];
        for t in 0..50 {
            s.near(&k, "same", t, H, 10);
        }
        assert_eq!(
            s.timed["n"].entries.len(),
            1,
            "a resent member is not copied"
        );
        assert_eq!(s.timed["n"].entries[0].0, 49, "and carries its latest time");
        s.near(&k, "other", 60, H, 10);
        // Still within the window one hour after its last sending, not its first.
        assert_eq!(s.near(&k, "x", H + 40, H, 10), vec!["same", "other"]);
        // The cap counts distinct members: 10 resendings of one did not push "other" out.
        assert_eq!(s.timed["n"].entries.len(), 3);
    }

    #[test]
    fn reputation_expires_and_the_sweep_drops_it() {
        let mut s = SignalState::default();
        s.reputation("r", true, 20, 0);
        assert_eq!(s.peek("r", REPUTATION_TTL_MS - 1), Some(0));
        s.sweep(REPUTATION_TTL_MS);
        assert!(s.reputation.is_empty() && s.reputation_expires.is_empty());
        // A state from an older snapshot (no expiry) gets one at the sweep, not a deletion.
        s.reputation.insert("old".into(), 3);
        s.sweep(5);
        assert_eq!(s.peek("old", 6), Some(3));
        assert_eq!(s.peek("old", 5 + REPUTATION_TTL_MS), None);
    }

    #[test]
    fn domain_sets_expire_and_cap() {
        let mut s = SignalState::default();
        let d = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(s.first_seen("k", &d(&["a", "b"]), 0, 100, 3), 2);
        assert_eq!(s.first_seen("k", &d(&["a", "c", "d"]), 50, 100, 3), 2);
        // Capped at 3: "d" was counted new but not remembered.
        assert_eq!(s.first_seen("k", &d(&["d"]), 60, 100, 3), 1);
        assert_eq!(s.first_seen("k", &d(&["a"]), 500, 100, 3), 1, "expired");
    }
}
