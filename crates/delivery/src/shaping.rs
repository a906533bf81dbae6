//! Traffic shaping (issue 22 part 2): what one source IP may send to one destination, and how
//! that adapts to what the destination says.
//!
//! A delivery's *pair* is (source IP, destination), the destination being the first matching
//! `[[shaping]]` rule's `destination` (so every MX host of `*.google.com` shares one budget) or,
//! without a rule, the route's MX site. Each pair has a rate: its rule's `messages_per_minute`,
//! or none (unlimited). Messages on a pair with a rate are spaced evenly; one that would come
//! too early is not sent but deferred to its slot, without counting as an attempt.
//!
//! A 4xx reply matching `[delivery.adaptive] patterns` (Gmail's `421 4.7.28 … rate limited`,
//! Outlook's `4.7.650`, Yahoo's `TSS04`, …) *throttles* the pair: its rate is halved (from the
//! rate it had, or for an unlimited pair from what it sent in the last minute) down to a floor,
//! and a throttle at the floor suspends it for `suspend_for`; with `action = "suspend"` every
//! throttle suspends. Each `restore_after` successes in a row double the rate back until it
//! reaches the rule's (or, unlimited, the rate it had when first slowed): success restores
//! gradually. Several replies to messages sent at the same rate count once (the `epoch` an
//! admission carries), so one burst of 421s to concurrent connections halves once, not ten times.
//!
//! Pure state with `now` passed in (Unix ms from the queue's `Clock`), so the state machine is
//! tested with injected time below; `Shaper` is the shared table the queue asks.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use outguard_types::config::{AdaptiveConfig, ShapingRule, ThrottleAction};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::mx::Route;

const MINUTE_MS: f64 = 60_000.0;
/// Admission times kept per pair to estimate its last minute's rate (80 KB at most; an
/// unlimited pair sending more is estimated at this many a minute).
const MAX_RECENT: usize = 10_000;
/// Past this many pairs, normal pairs idle for `IDLE_PAIR_MS` are forgotten.
const MAX_PAIRS: usize = 10_000;
const IDLE_PAIR_MS: i64 = 600_000;
/// Longest reply text kept as the reason a pair is slowed.
const MAX_REASON: usize = 200;

/// One (source IP, destination) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    pub source_ip: IpAddr,
    pub destination: String,
}

/// How the pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Normal,
    Slowed,
    Suspended,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Slowed => "slowed",
            Mode::Suspended => "suspended",
        }
    }
}

/// The answer to "may this message go now on this pair?".
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// Yes; report the outcome with this epoch.
    Go { epoch: u64 },
    /// Not before `until` (Unix ms), because the pair is `mode`.
    Wait { until: i64, mode: Mode },
}

/// A change of a pair's rate, for the `delivery_shaping` trace event.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `slowed`, `suspended`, `faster` or `restored`.
    pub action: &'static str,
    pub mode: Mode,
    /// Messages per minute now (`None`: unlimited).
    pub rate: Option<f64>,
    pub suspended_until: Option<i64>,
    pub reason: Option<String>,
}

/// The rate state of one pair.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The rule's rate (`None`: unlimited).
    base: Option<f64>,
    /// The rate now.
    rate: Option<f64>,
    /// For an unlimited pair: the rate it had when it was first slowed (what it is restored to).
    before: Option<f64>,
    suspended_until: Option<i64>,
    /// Earliest start of the next message.
    next_slot: i64,
    /// Latest slot handed to a waiting message: the next waiter gets the one after, so waiting
    /// messages come back spread over the slots rather than all at the next one.
    reserved: i64,
    streak: u32,
    epoch: u64,
    reason: Option<String>,
    since: i64,
    throttles: u64,
    recent: VecDeque<i64>,
    last_used: i64,
}

fn interval_ms(rate: f64) -> i64 {
    (MINUTE_MS / rate.max(0.001)).ceil() as i64
}

impl Pair {
    /// A pair at its rule's rate (`messages_per_minute`, `None`: unlimited).
    pub fn new(base: Option<u32>) -> Pair {
        let base = base.map(f64::from);
        Pair {
            base,
            rate: base,
            before: None,
            suspended_until: None,
            next_slot: 0,
            reserved: 0,
            streak: 0,
            epoch: 0,
            reason: None,
            since: 0,
            throttles: 0,
            recent: VecDeque::new(),
            last_used: 0,
        }
    }

    pub fn mode(&self, now: i64) -> Mode {
        if self.suspended_until.is_some_and(|u| u > now) {
            Mode::Suspended
        } else if self.rate != self.base {
            Mode::Slowed
        } else {
            Mode::Normal
        }
    }

    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// May a message start now? `Go` takes the slot.
    pub fn admit(&mut self, now: i64) -> Admit {
        self.last_used = now;
        if let Some(until) = self.suspended_until {
            if until > now {
                return self.wait(until, Mode::Suspended);
            }
            self.suspended_until = None;
        }
        if let Some(rate) = self.rate {
            if now < self.next_slot {
                let mode = self.mode(now);
                return self.wait(self.next_slot, mode);
            }
            self.next_slot = now + interval_ms(rate);
        }
        while self.recent.front().is_some_and(|t| *t <= now - 60_000)
            || self.recent.len() >= MAX_RECENT
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        Admit::Go { epoch: self.epoch }
    }

    fn wait(&mut self, earliest: i64, mode: Mode) -> Admit {
        let step = self.rate.map_or(0, interval_ms);
        let until = earliest.max(self.reserved.saturating_add(step));
        self.reserved = until;
        Admit::Wait { until, mode }
    }

    /// The receiver said `reply` (a throttling 4xx) to a message admitted at `epoch`.
    pub fn throttled(
        &mut self,
        epoch: u64,
        reply: &str,
        now: i64,
        cfg: &AdaptiveConfig,
    ) -> Option<Change> {
        self.streak = 0;
        if epoch != self.epoch {
            return None; // sent at a rate we already reduced: counted once
        }
        self.epoch += 1;
        self.throttles += 1;
        if self.mode(now) == Mode::Normal {
            self.since = now;
        }
        self.reason = Some(reply.chars().take(MAX_REASON).collect());
        let floor = f64::from(cfg.min_messages_per_minute.max(1));
        if cfg.action == ThrottleAction::Suspend {
            self.suspend(now, cfg);
            return Some(self.change("suspended", now));
        }
        // An unlimited pair is halved from what it sent in the last minute; its first
        // throttle only slows it (however little it sent), never suspends it.
        let limited = self.rate.is_some();
        let current = self.rate.unwrap_or(self.recent.len() as f64);
        if !limited {
            self.before = Some(current.max(floor));
        }
        if limited && current <= floor {
            // At the floor already (or a rule below it): halving cannot help, stop a while.
            self.rate = Some(if current > 0.0 { current } else { floor });
            self.suspend(now, cfg);
            return Some(self.change("suspended", now));
        }
        let halved = (current / 2.0).max(floor);
        self.rate = Some(halved);
        self.next_slot = now + interval_ms(halved);
        Some(self.change("slowed", now))
    }

    fn suspend(&mut self, now: i64, cfg: &AdaptiveConfig) {
        let period = i64::try_from(cfg.suspend_for.as_millis()).unwrap_or(i64::MAX);
        self.suspended_until = Some(now.saturating_add(period));
    }

    /// A message on the pair was accepted.
    pub fn succeeded(&mut self, now: i64, cfg: &AdaptiveConfig) -> Option<Change> {
        if self.rate == self.base {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < cfg.restore_after.max(1) {
            return None;
        }
        self.streak = 0;
        let target = self.base.or(self.before);
        let doubled = self.rate.map(|r| r * 2.0);
        match (doubled, target) {
            (Some(d), Some(t)) if d < t => {
                self.rate = Some(d);
                Some(self.change("faster", now))
            }
            _ => {
                self.rate = self.base;
                self.before = None;
                self.reason = None;
                Some(self.change("restored", now))
            }
        }
    }

    fn change(&self, action: &'static str, now: i64) -> Change {
        Change {
            action,
            mode: self.mode(now),
            rate: self.rate,
            suspended_until: self.suspended_until.filter(|u| *u > now),
            reason: self.reason.clone(),
        }
    }
}

/// A pair that is not at its normal rate, as the pools page and `GET /api/v1/pools` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairView {
    pub pool: String,
    pub source_ip: String,
    pub destination: String,
    pub state: Mode,
    /// Messages per minute now (`None`: unlimited).
    pub messages_per_minute: Option<f64>,
    /// The rule's rate it is restored to (`None`: unlimited).
    pub normal_messages_per_minute: Option<f64>,
    pub suspended_until: Option<i64>,
    /// The receiver's reply that slowed it.
    pub reason: String,
    /// When it was first slowed (Unix ms).
    pub since: i64,
    /// Throttling replies counted on it.
    pub throttles: u64,
}

/// Counters per (pool, destination) for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairCounters {
    /// Throttling replies that changed the pair's rate.
    pub throttled: u64,
    /// Deliveries held back (deferred) because the pair was slowed or suspended.
    pub held_back: u64,
}

struct Entry {
    pool: String,
    pair: Pair,
    connections: Option<Arc<Semaphore>>,
}

/// What the queue needs for one delivery on a pair.
pub struct Shaped {
    pub key: PairKey,
    pub pool: String,
    /// The rule's `max_messages_per_connection`.
    pub max_messages_per_connection: Option<u32>,
    /// The rule's `max_connections` for this pair.
    pub connections: Option<Arc<Semaphore>>,
}

/// The shared table of pairs.
pub struct Shaper {
    rules: Vec<ShapingRule>,
    adaptive: AdaptiveConfig,
    /// `adaptive.patterns`, lowercased.
    patterns: Vec<String>,
    pairs: Mutex<HashMap<PairKey, Entry>>,
    counters: Mutex<HashMap<(String, String), PairCounters>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Does `pattern` (`gmail.com` or `*.google.com`) name `name`?
fn names(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name.len() > suffix.len() && name.ends_with(&format!(".{suffix}")),
        None => name == pattern,
    }
}

impl Shaper {
    pub fn new(rules: Vec<ShapingRule>, adaptive: AdaptiveConfig) -> Shaper {
        let patterns = adaptive
            .patterns
            .iter()
            .map(|p| p.to_ascii_lowercase())
            .collect();
        Shaper {
            rules,
            adaptive,
            patterns,
            pairs: Mutex::new(HashMap::new()),
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// The first rule for a delivery to `domain` over `route` from `ip` of `pool`.
    pub fn rule_for(
        &self,
        domain: &str,
        route: &Route,
        pool: &str,
        ip: IpAddr,
    ) -> Option<&ShapingRule> {
        self.rules.iter().find(|r| {
            r.pool.as_deref().is_none_or(|p| p == pool)
                && r.source_ip.is_none_or(|s| s == ip)
                && (names(&r.destination, domain)
                    || route.hops.iter().any(|h| names(&r.destination, &h.host)))
        })
    }

    /// Is `reply` a receiver saying we send too fast?
    pub fn is_throttle(&self, reply: &str) -> bool {
        if !self.adaptive.enabled {
            return false;
        }
        let reply = reply.to_ascii_lowercase();
        self.patterns.iter().any(|p| reply.contains(p.as_str()))
    }

    /// The pair of a delivery, its limits, and whether it may go now.
    pub fn admit(
        &self,
        domain: &str,
        route: &Route,
        pool: &str,
        ip: IpAddr,
        now: i64,
    ) -> (Shaped, Admit) {
        let rule = self.rule_for(domain, route, pool, ip);
        let key = PairKey {
            source_ip: ip,
            destination: rule.map_or_else(|| route.site.clone(), |r| r.destination.clone()),
        };
        let mut pairs = lock(&self.pairs);
        if pairs.len() > MAX_PAIRS {
            pairs.retain(|_, e| {
                e.pair.mode(now) != Mode::Normal || e.pair.last_used > now - IDLE_PAIR_MS
            });
        }
        let entry = pairs.entry(key.clone()).or_insert_with(|| Entry {
            pool: pool.to_string(),
            pair: Pair::new(rule.and_then(|r| r.messages_per_minute)),
            connections: rule
                .and_then(|r| r.max_connections)
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
        });
        let admit = entry.pair.admit(now);
        let shaped = Shaped {
            key,
            pool: entry.pool.clone(),
            max_messages_per_connection: rule.and_then(|r| r.max_messages_per_connection),
            connections: entry.connections.clone(),
        };
        drop(pairs);
        if matches!(admit, Admit::Wait { .. }) {
            self.count(&shaped, |c| c.held_back += 1);
        }
        (shaped, admit)
    }

    fn count(&self, s: &Shaped, f: impl FnOnce(&mut PairCounters)) {
        let k = (s.pool.clone(), s.key.destination.clone());
        f(lock(&self.counters).entry(k).or_default());
    }

    /// A throttling reply on `s`; returns the change and when the pair takes a message again.
    pub fn throttled(
        &self,
        s: &Shaped,
        epoch: u64,
        reply: &str,
        now: i64,
    ) -> (Option<Change>, i64) {
        let mut pairs = lock(&self.pairs);
        let Some(e) = pairs.get_mut(&s.key) else {
            return (None, now);
        };
        let change = e.pair.throttled(epoch, reply, now, &self.adaptive);
        let ready = match e.pair.admit_time(now) {
            t if t > now => t,
            _ => now,
        };
        drop(pairs);
        if change.is_some() {
            self.count(s, |c| c.throttled += 1);
        }
        (change, ready)
    }

    /// An accepted message on `s`.
    pub fn succeeded(&self, s: &Shaped, now: i64) -> Option<Change> {
        let mut pairs = lock(&self.pairs);
        let e = pairs.get_mut(&s.key)?;
        e.pair.succeeded(now, &self.adaptive)
    }

    /// Pairs slowed or suspended now, by pool, destination and source IP.
    pub fn view(&self, now: i64) -> Vec<PairView> {
        let pairs = lock(&self.pairs);
        let mut out: Vec<PairView> = pairs
            .iter()
            .filter(|(_, e)| e.pair.mode(now) != Mode::Normal)
            .map(|(k, e)| PairView {
                pool: e.pool.clone(),
                source_ip: k.source_ip.to_string(),
                destination: k.destination.clone(),
                state: e.pair.mode(now),
                messages_per_minute: e.pair.rate,
                normal_messages_per_minute: e.pair.base,
                suspended_until: e.pair.suspended_until.filter(|u| *u > now),
                reason: e.pair.reason.clone().unwrap_or_default(),
                since: e.pair.since,
                throttles: e.pair.throttles,
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.pool, &a.destination, &a.source_ip).cmp(&(&b.pool, &b.destination, &b.source_ip))
        });
        out
    }

    /// Counters per (pool, destination), sorted.
    pub fn counters(&self) -> Vec<((String, String), PairCounters)> {
        let mut out: Vec<_> = lock(&self.counters)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Pair {
    /// When the next message could start (without taking the slot).
    fn admit_time(&self, now: i64) -> i64 {
        let suspended = self.suspended_until.filter(|u| *u > now).unwrap_or(now);
        let slot = if self.rate.is_some() {
            self.next_slot
        } else {
            now
        };
        suspended.max(slot)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mx::Hop;

    fn cfg(action: ThrottleAction) -> AdaptiveConfig {
        AdaptiveConfig {
            action,
            suspend_for: Duration::from_secs(60),
            restore_after: 2,
            min_messages_per_minute: 10,
            ..AdaptiveConfig::default()
        }
    }

    fn go(p: &mut Pair, now: i64) -> u64 {
        match p.admit(now) {
            Admit::Go { epoch } => epoch,
            other => panic!("expected Go at {now}, got {other:?}"),
        }
    }

    #[test]
    fn a_rate_spaces_messages_and_waiters_get_successive_slots() {
        let mut p = Pair::new(Some(60)); // one a second
        go(&mut p, 0);
        assert_eq!(
            p.admit(10),
            Admit::Wait {
                until: 1000,
                mode: Mode::Normal
            }
        );
        assert_eq!(
            p.admit(20),
            Admit::Wait {
                until: 2000,
                mode: Mode::Normal
            }
        );
        go(&mut p, 1000);
        go(&mut p, 2000);
        assert_eq!(p.mode(2000), Mode::Normal);
    }

    #[test]
    fn throttle_halves_then_successes_restore_gradually() {
        let c = cfg(ThrottleAction::Halve);
        let mut p = Pair::new(Some(80));
        let e = go(&mut p, 0);
        let ch = p
            .throttled(e, "421 4.7.28 rate limited", 100, &c)
            .expect("change");
        assert_eq!(
            (ch.action, ch.mode, ch.rate),
            ("slowed", Mode::Slowed, Some(40.0))
        );
        // Another reply to a message sent at the old rate counts once.
        assert_eq!(p.throttled(e, "421 4.7.28 rate limited", 110, &c), None);
        assert_eq!(p.rate(), Some(40.0));
        // The next message waits a full interval at the new rate (1.5 s).
        assert_eq!(
            p.admit(200),
            Admit::Wait {
                until: 1600,
                mode: Mode::Slowed
            }
        );
        let e = go(&mut p, 1600);
        let ch = p
            .throttled(e, "421 rate limited", 1700, &c)
            .expect("change");
        assert_eq!(ch.rate, Some(20.0));
        // restore_after = 2: every second success doubles, back to the rule's 80.
        assert_eq!(p.succeeded(5000, &c), None);
        assert_eq!(
            p.succeeded(5001, &c).map(|c| (c.action, c.rate)),
            Some(("faster", Some(40.0)))
        );
        assert_eq!(p.succeeded(5002, &c), None);
        let ch = p.succeeded(5003, &c).expect("restored");
        assert_eq!(
            (ch.action, ch.mode, ch.rate),
            ("restored", Mode::Normal, Some(80.0))
        );
        assert_eq!(p.succeeded(5004, &c), None);
    }

    #[test]
    fn a_throttle_at_the_floor_suspends_and_the_pair_resumes_after() {
        let c = cfg(ThrottleAction::Halve);
        let mut p = Pair::new(Some(20));
        let e = go(&mut p, 0);
        assert_eq!(
            p.throttled(e, "421 x rate limited", 0, &c).map(|c| c.rate),
            Some(Some(10.0))
        );
        let e = go(&mut p, 6000);
        let ch = p
            .throttled(e, "421 x rate limited", 6000, &c)
            .expect("change");
        assert_eq!(
            (ch.action, ch.mode, ch.suspended_until),
            ("suspended", Mode::Suspended, Some(66_000))
        );
        assert!(
            matches!(p.admit(30_000), Admit::Wait { until, mode: Mode::Suspended } if until >= 66_000)
        );
        assert_eq!(p.mode(66_000), Mode::Slowed);
        go(&mut p, 80_000);
    }

    #[test]
    fn suspend_action_stops_the_pair_for_the_period_then_full_speed() {
        let c = cfg(ThrottleAction::Suspend);
        let mut p = Pair::new(None);
        let e = go(&mut p, 0);
        let ch = p
            .throttled(e, "421 4.7.650 too many connections", 1000, &c)
            .expect("change");
        assert_eq!((ch.action, ch.rate), ("suspended", None));
        assert!(matches!(p.admit(2000), Admit::Wait { until: 61_000, .. }));
        assert_eq!(p.mode(61_000), Mode::Normal);
        go(&mut p, 61_000);
        go(&mut p, 61_001); // unlimited again: no spacing
    }

    #[test]
    fn an_unlimited_pair_is_halved_from_what_it_sent_and_restored_to_unlimited() {
        let c = cfg(ThrottleAction::Halve);
        let mut p = Pair::new(None);
        let mut e = 0;
        for t in 0..40 {
            e = go(&mut p, t * 100);
        }
        let ch = p
            .throttled(e, "451 TSS04 try again later", 4000, &c)
            .expect("change");
        assert_eq!(ch.rate, Some(20.0));
        for t in 0..4 {
            p.succeeded(10_000 + t, &c);
        }
        assert_eq!(p.mode(20_000), Mode::Normal);
        assert_eq!(p.rate(), None);
    }

    /// The shared table, time injected as the queue's `Clock` gives it (Unix ms).
    #[test]
    fn shaper_matches_rules_and_lists_slowed_pairs() {
        let t0 = 1_000_000;
        let rule = ShapingRule {
            destination: "*.google.com".into(),
            pool: None,
            source_ip: None,
            max_connections: Some(2),
            max_messages_per_connection: Some(5),
            messages_per_minute: Some(600),
        };
        let s = Shaper::new(vec![rule], cfg(ThrottleAction::Halve));
        let hop = |h: &str| Hop {
            host: h.into(),
            addr: "127.0.0.1:25".parse().expect("addr"),
        };
        let google = Route {
            site: "mx1".into(),
            hops: vec![hop("gmail-smtp-in.l.google.com")],
        };
        let other = Route {
            site: "mx.other.test".into(),
            hops: vec![hop("mx.other.test")],
        };
        let ip = IpAddr::from([127, 0, 0, 2]);
        let (g, admit) = s.admit("gmail.com", &google, "regular", ip, t0);
        assert_eq!(g.key.destination, "*.google.com");
        assert_eq!(g.max_messages_per_connection, Some(5));
        let Admit::Go { epoch } = admit else {
            panic!("{admit:?}")
        };
        let (o, _) = s.admit("other.test", &other, "regular", ip, t0);
        assert_eq!(o.key.destination, "mx.other.test");
        assert!(o.connections.is_none());
        assert!(s.is_throttle("421 4.7.28 Our system has detected an unusual rate"));
        assert!(!s.is_throttle("451 4.3.0 mailbox busy"));
        let (change, ready) = s.throttled(&g, epoch, "421 4.7.28 rate limited", t0);
        assert_eq!(change.map(|c| c.rate), Some(Some(300.0)));
        assert_eq!(ready, t0 + 200);
        let view = s.view(t0);
        assert_eq!(view.len(), 1);
        assert_eq!(
            (view[0].state, view[0].reason.as_str()),
            (Mode::Slowed, "421 4.7.28 rate limited")
        );
        let (_, admit) = s.admit("gmail.com", &google, "regular", ip, t0 + 199);
        assert!(
            matches!(admit, Admit::Wait { until, mode: Mode::Slowed } if until == t0 + 200),
            "{admit:?}"
        );
        let (_, admit) = s.admit("gmail.com", &google, "regular", ip, t0 + 200);
        assert!(matches!(admit, Admit::Go { .. }), "{admit:?}");
        let c = s.counters();
        assert_eq!(c[0].0, ("regular".to_string(), "*.google.com".to_string()));
        assert_eq!((c[0].1.throttled, c[0].1.held_back), (1, 1));
    }
}
