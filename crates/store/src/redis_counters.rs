//! The cluster counter store (SPEC §6): [`outguard_policy::Counters`] on Redis, shared by every
//! relay node, so one set of limits holds across the cluster.
//!
//! Every operation is one atomic Lua script ([`scripts`]): a multi-window reservation checks
//! and records all its windows in one EVALSHA, so decisions are exact however many sessions
//! and nodes run at once. Windows are exact sliding logs (a ZSET member per unit).
//!
//! **Time.** By default ([`RedisClock::Server`]) the scripts take the time from Redis `TIME`
//! and the caller's `now` is ignored: node clocks may drift without widening any window.
//! [`RedisClock::Caller`] uses the caller's `now` instead; it exists so the shared contract
//! tests (which travel hours in time) run on this backend too, and is not for production.
//!
//! **Release.** A reservation is identified by `(key, time, n)`; release removes `n`
//! reservation units recorded on the key at exactly that time. Units of one key at one instant
//! are interchangeable for every count, so the effect is exactly that of removing the very
//! members reserved (the in-memory backend does the same).
//!
//! **Failure.** Every call is bounded by a timeout (500 ms by default). When Redis is down or
//! slow a call returns [`CounterError::Unavailable`]: the relay then defers (`451 4.3.0`) and
//! nothing is admitted uncounted. A call that times out after Redis executed it leaves its
//! units counted (the safe side). The [`ConnectionManager`] reconnects by itself, so service
//! resumes without a restart when Redis is back.

mod conn;
mod scripts;
mod signals;

pub use signals::REPUTATION_TTL_MS;

pub use conn::{CLUSTER_SCHEME, cluster_nodes};

use std::time::Duration;

use outguard_policy::{
    CounterError, CounterFuture, Counters, Reservation, ReserveOutcome, WindowCheck,
};
use outguard_types::model::Millis;

/// Default bound on one counter operation (connect, send, script, reply).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default key prefix when the `counters` URL names none.
pub const DEFAULT_PREFIX: &str = "outguard";
/// How long a recent-outcomes list lives after its latest push.
const RECENT_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// Where the scripts take the time from; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisClock {
    /// Redis `TIME` (production).
    Server,
    /// The caller's `now` (contract tests that travel in time).
    Caller,
}

/// Counters on one Redis server (or a primary), or on a Redis Cluster; see the module docs.
pub struct RedisCounters {
    con: conn::Conn,
    layout: conn::Layout,
    clock: RedisClock,
    timeout: Duration,
    scripts: scripts::Scripts,
    signal_scripts: signals::SignalScripts,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("layout", &self.layout)
            .field("clock", &self.clock)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> CounterError {
    CounterError::Unavailable(format!("redis: {e}"))
}

/// Split a `counters` URL into the Redis URL and the key prefix (`?prefix=NAME`; other query
/// parameters stay in the URL for the redis client).
pub fn split_prefix(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut prefix = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("prefix=") {
            Some(p) => {
                prefix = Some(p.to_string()).filter(|p| !p.is_empty());
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, prefix)
}

impl RedisCounters {
    /// Connect to `url` (`redis://host:port[/db]`, or a cluster:
    /// `redis+cluster://host:port,host:port,…`) and check Redis answers within the timeout.
    /// Every key is stored under `key_prefix:` so several deployments (or tests) can share one
    /// Redis. The server clock is used; see [`RedisCounters::with_clock`].
    pub async fn connect(url: &str, key_prefix: &str) -> Result<RedisCounters, CounterError> {
        let cluster = url.starts_with(CLUSTER_SCHEME);
        if cluster && key_prefix.contains(['{', '}']) {
            // A brace in the prefix would become the hash tag and split a decision's keys.
            return Err(unavailable(format!(
                "prefix {key_prefix:?}: no braces on a cluster"
            )));
        }
        let con = conn::connect(url, DEFAULT_TIMEOUT).await?;
        let me = RedisCounters {
            con,
            layout: conn::Layout {
                prefix: key_prefix.to_string(),
                cluster,
            },
            clock: RedisClock::Server,
            timeout: DEFAULT_TIMEOUT,
            scripts: scripts::Scripts::new(),
            signal_scripts: signals::SignalScripts::new(),
        };
        me.ping().await?;
        Ok(me)
    }

    /// Connect from a `counters` URL, taking the prefix from `?prefix=` (default `outguard`).
    pub async fn from_url(url: &str) -> Result<RedisCounters, CounterError> {
        let (url, prefix) = split_prefix(url);
        RedisCounters::connect(&url, prefix.as_deref().unwrap_or(DEFAULT_PREFIX)).await
    }

    /// Use `clock` for the window arithmetic (default [`RedisClock::Server`]).
    pub fn with_clock(mut self, clock: RedisClock) -> RedisCounters {
        self.clock = clock;
        self
    }

    /// Bound every operation by `timeout` (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> RedisCounters {
        self.timeout = timeout;
        self
    }

    pub fn prefix(&self) -> &str {
        &self.layout.prefix
    }

    /// Whether this is a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        self.layout.cluster
    }

    /// One round trip, bounded by the timeout (start-up check and health probes).
    pub async fn ping(&self) -> Result<(), CounterError> {
        let mut con = self.con.clone();
        let pong: String = self
            .bounded(redis::cmd("PING").query_async(&mut con))
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(unavailable(format!("PING answered {pong:?}")))
        }
    }

    /// Delete every key under this prefix (tests clean up after themselves); returns how many.
    pub async fn purge(&self) -> Result<u64, CounterError> {
        let mut con = self.con.clone();
        let pattern = format!("{}:*", self.layout.prefix);
        if self.layout.cluster {
            // KEYS goes to every master (the cluster client merges the answers); a test's
            // handful of keys, never a production verb.
            let keys: Vec<String> = self
                .bounded(redis::cmd("KEYS").arg(&pattern).query_async(&mut con))
                .await?;
            let mut deleted = 0u64;
            for k in keys {
                let n: u64 = self
                    .bounded(redis::cmd("DEL").arg(&k).query_async(&mut con))
                    .await?;
                deleted += n;
            }
            return Ok(deleted);
        }
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .bounded(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut con),
                )
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .bounded(redis::cmd("DEL").arg(&keys).query_async(&mut con))
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CounterError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    fn log_key(&self, key: &str) -> String {
        self.layout.log_key(key)
    }

    fn meta_key(&self, key: &str) -> String {
        self.layout.meta_key(key)
    }

    fn recent_key(&self, key: &str) -> String {
        self.layout.recent_key(key)
    }

    fn clock_arg(&self) -> &'static str {
        match self.clock {
            RedisClock::Server => "S",
            RedisClock::Caller => "C",
        }
    }

    async fn reserve_inner(
        &self,
        checks: &[WindowCheck],
        n: u32,
        now: Millis,
    ) -> Result<ReserveOutcome, CounterError> {
        if checks.is_empty() {
            return Ok(ReserveOutcome::Admitted(Reservation::empty()));
        }
        let mut distinct: Vec<&str> = Vec::with_capacity(checks.len());
        let mut inv = self.scripts.reserve.prepare_invoke();
        inv.arg(self.clock_arg()).arg(now).arg(n);
        for c in checks {
            let j = match distinct.iter().position(|k| *k == c.key) {
                Some(j) => j,
                None => {
                    distinct.push(&c.key);
                    inv.key(self.log_key(&c.key)).key(self.meta_key(&c.key));
                    distinct.len() - 1
                }
            };
            inv.arg(j + 1).arg(c.window_ms).arg(c.limit.to_string());
        }
        let mut con = self.con.clone();
        let out: Vec<i64> = self.bounded(inv.invoke_async(&mut con)).await?;
        decode_reserve(&out, &distinct, checks.len(), n)
    }

    async fn release_inner(&self, r: &Reservation) -> Result<(), CounterError> {
        if r.entries.is_empty() || r.n == 0 {
            return Ok(());
        }
        let mut inv = self.scripts.release.prepare_invoke();
        inv.arg(r.n);
        for (key, at) in &r.entries {
            inv.key(self.log_key(key)).arg(*at);
        }
        let mut con = self.con.clone();
        let _: i64 = self.bounded(inv.invoke_async(&mut con)).await?;
        Ok(())
    }

    async fn record_inner(
        &self,
        key: &str,
        n: u32,
        window_ms: i64,
        now: Millis,
    ) -> Result<u64, CounterError> {
        let mut inv = self.scripts.record.prepare_invoke();
        inv.key(self.log_key(key)).key(self.meta_key(key));
        inv.arg(self.clock_arg()).arg(now).arg(n).arg(window_ms);
        let mut con = self.con.clone();
        self.bounded(inv.invoke_async(&mut con)).await
    }

    async fn count_inner(
        &self,
        key: &str,
        window_ms: i64,
        now: Millis,
    ) -> Result<u64, CounterError> {
        let mut inv = self.scripts.count.prepare_invoke();
        inv.key(self.log_key(key));
        inv.arg(self.clock_arg()).arg(now).arg(window_ms);
        let mut con = self.con.clone();
        self.bounded(inv.invoke_async(&mut con)).await
    }

    async fn push_recent_inner(
        &self,
        key: &str,
        is_spam: bool,
        keep: usize,
    ) -> Result<(u32, u32), CounterError> {
        let mut inv = self.scripts.push_recent.prepare_invoke();
        inv.key(self.recent_key(key));
        inv.arg(if is_spam { "1" } else { "0" })
            .arg(keep.max(1))
            .arg(RECENT_TTL_MS);
        let mut con = self.con.clone();
        let (spam, total): (u32, u32) = self.bounded(inv.invoke_async(&mut con)).await?;
        Ok((spam, total))
    }
}

/// Turn the reserve script's reply into an outcome (see `scripts::RESERVE`).
fn decode_reserve(
    out: &[i64],
    distinct: &[&str],
    nchecks: usize,
    n: u32,
) -> Result<ReserveOutcome, CounterError> {
    let bad = || unavailable(format!("unexpected reserve reply {out:?}"));
    match out.first() {
        Some(0) => {
            let (Some(&index), Some(&count)) = (out.get(1), out.get(2)) else {
                return Err(bad());
            };
            Ok(ReserveOutcome::Refused {
                index: usize::try_from(index).map_err(|_| bad())?,
                count: u64::try_from(count).map_err(|_| bad())?,
            })
        }
        Some(1) if out.len() == 1 + distinct.len() + nchecks => {
            let ats = &out[1..=distinct.len()];
            let entries = if n == 0 {
                Vec::new()
            } else {
                distinct
                    .iter()
                    .zip(ats)
                    .map(|(k, at)| (k.to_string(), *at))
                    .collect()
            };
            let counts = out[1 + distinct.len()..]
                .iter()
                .map(|c| u64::try_from(*c).map_err(|_| bad()))
                .collect::<Result<Vec<u64>, _>>()?;
            Ok(ReserveOutcome::Admitted(Reservation { n, entries, counts }))
        }
        _ => Err(bad()),
    }
}

impl Counters for RedisCounters {
    fn reserve<'a>(
        &'a self,
        checks: &'a [WindowCheck],
        n: u32,
        now: Millis,
    ) -> CounterFuture<'a, ReserveOutcome> {
        Box::pin(self.reserve_inner(checks, n, now))
    }

    fn release<'a>(&'a self, reservation: &'a Reservation) -> CounterFuture<'a, ()> {
        Box::pin(self.release_inner(reservation))
    }

    fn record<'a>(
        &'a self,
        key: &'a str,
        n: u32,
        window_ms: i64,
        now: Millis,
    ) -> CounterFuture<'a, u64> {
        Box::pin(self.record_inner(key, n, window_ms, now))
    }

    fn count<'a>(&'a self, key: &'a str, window_ms: i64, now: Millis) -> CounterFuture<'a, u64> {
        Box::pin(self.count_inner(key, window_ms, now))
    }

    fn push_recent<'a>(
        &'a self,
        key: &'a str,
        is_spam: bool,
        keep: usize,
    ) -> CounterFuture<'a, (u32, u32)> {
        Box::pin(self.push_recent_inner(key, is_spam, keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_taken_from_the_query() {
        let cases = [
            ("redis://127.0.0.1:6379", ("redis://127.0.0.1:6379", None)),
            (
                "redis://127.0.0.1:6379?prefix=eu1",
                ("redis://127.0.0.1:6379", Some("eu1")),
            ),
            (
                "redis://h:1/2?protocol=resp3&prefix=x",
                ("redis://h:1/2?protocol=resp3", Some("x")),
            ),
            ("redis://h:1?prefix=", ("redis://h:1", None)),
        ];
        for (url, (want_url, want_prefix)) in cases {
            let (u, p) = split_prefix(url);
            assert_eq!((u.as_str(), p.as_deref()), (want_url, want_prefix), "{url}");
        }
    }

    #[test]
    fn reserve_replies_decode() {
        let keys = ["a", "b"];
        assert_eq!(
            decode_reserve(&[0, 1, 5], &keys, 3, 1).unwrap(),
            ReserveOutcome::Refused { index: 1, count: 5 }
        );
        let ReserveOutcome::Admitted(r) =
            decode_reserve(&[1, 10, 11, 3, 4, 4], &keys, 3, 1).unwrap()
        else {
            panic!("refused")
        };
        assert_eq!(r.entries, vec![("a".into(), 10), ("b".into(), 11)]);
        assert_eq!(r.counts, vec![3, 4, 4]);
        assert!(decode_reserve(&[1, 10], &keys, 3, 1).is_err());
        assert!(decode_reserve(&[], &keys, 3, 1).is_err());
        assert!(decode_reserve(&[0, -1, 5], &keys, 3, 1).is_err());
    }
}
