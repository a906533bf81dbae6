//! [`outguard_policy::SignalStore`] on Redis (cluster mode, issue 19): every node sees the same
//! sender reputation, hourly history and campaign fingerprints. One small Lua script per
//! operation (atomic, one round trip), bounded like the embedded backend:
//! - reputation: a string `N` (clean messages since the latest spam), expiring
//!   [`REPUTATION_TTL_MS`] after the caller's `now` of its latest outcome (`PEXPIREAT`, so
//!   the embedded backend, which expires by the same `now`, agrees);
//! - hourly buckets: a HASH `hour → units`; hours older than asked are deleted on each call;
//! - remembered domains: a SET capped at `cap`, expiring `ttl` after its latest addition;
//! - campaign lists: a ZSET scored by time, trimmed to the window and to `cap`;
//! - marks: a string `at:until` (the latest mark and when it is forgotten, in the caller's
//!   time, which `last_mark` compares), expiring `ttl` later by Redis's clock as well.
//!
//! Time is the caller's `now` (see the trait's docs); the expiries are Redis's own clock.

use outguard_policy::SignalStore;
use outguard_policy::counters::{CounterError, CounterFuture};
use outguard_policy::signals::hour_of;
use outguard_types::model::Millis;

use super::RedisCounters;

/// A sender silent this long loses its reputation state (Redis would otherwise keep it forever).
pub use outguard_policy::signals::reputation::REPUTATION_TTL_MS;

const REPUTATION: &str = r#"
local before = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], '0')
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
elseif before then
  local k = tonumber(before) + 1
  if k >= tonumber(ARGV[2]) then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], tostring(k))
    redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  end
end
if before then return tonumber(before) end
return -1
"#;

const HOURLY: &str = r#"
local hour = tonumber(ARGV[1])
local hours = tonumber(ARGV[3])
if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) end
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, hours do out[i] = 0 end
for i = 1, #all, 2 do
  local back = hour - tonumber(all[i])
  if back >= hours then
    redis.call('HDEL', KEYS[1], all[i])
  elseif back >= 0 then
    out[back + 1] = tonumber(all[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], (hours + 1) * 3600000)
return out
"#;

const FIRST_SEEN: &str = r#"
local new = 0
local size = redis.call('SCARD', KEYS[1])
local cap = tonumber(ARGV[2])
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then
    new = new + 1
    if size < cap then
      redis.call('SADD', KEYS[1], ARGV[i])
      size = size + 1
    end
  end
end
if size > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return new
"#;

const NEAR: &str = r#"
local now = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local out = {}
local seen = {}
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.0f', now - w))
  for _, m in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    if not seen[m] then
      seen[m] = true
      out[#out + 1] = m
    end
  end
  redis.call('ZADD', KEYS[i], string.format('%.0f', now), ARGV[4])
  local n = redis.call('ZCARD', KEYS[i])
  if n > cap then redis.call('ZREMRANGEBYRANK', KEYS[i], 0, n - cap - 1) end
  redis.call('PEXPIRE', KEYS[i], string.format('%.0f', w + 60000))
end
return out
"#;

const MARK: &str = r#"
local at = tonumber(ARGV[1])
local before = redis.call('GET', KEYS[1])
if before then
  local old = tonumber(string.match(before, '^(-?%d+)'))
  if old and old > at then at = old end
end
redis.call('SET', KEYS[1], string.format('%.0f:%.0f', at, at + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// The scripts, hashed once.
pub(super) struct SignalScripts {
    reputation: redis::Script,
    hourly: redis::Script,
    first_seen: redis::Script,
    near: redis::Script,
    mark: redis::Script,
}

impl SignalScripts {
    pub(super) fn new() -> SignalScripts {
        SignalScripts {
            reputation: redis::Script::new(REPUTATION),
            hourly: redis::Script::new(HOURLY),
            first_seen: redis::Script::new(FIRST_SEEN),
            near: redis::Script::new(NEAR),
            mark: redis::Script::new(MARK),
        }
    }
}

impl RedisCounters {
    /// On a Redis Cluster every signal key carries one hash tag, `{s}`: a campaign lookup's
    /// band keys are read and written by one script, so they must share a slot. That puts the
    /// (small, short-lived) signal state on one shard; the counters stay spread by subject.
    fn signal_key(&self, key: &str) -> String {
        if self.is_cluster() {
            format!("{}:{{s}}:{key}", self.prefix())
        } else {
            format!("{}:s:{key}", self.prefix())
        }
    }

    async fn reputation_inner(
        &self,
        key: &str,
        spam: bool,
        clear_after: u32,
        now: Millis,
    ) -> Result<Option<u32>, CounterError> {
        let mut inv = self.signal_scripts.reputation.prepare_invoke();
        inv.key(self.signal_key(key))
            .arg(if spam { "1" } else { "0" })
            .arg(clear_after)
            .arg(now.saturating_add(REPUTATION_TTL_MS));
        let mut con = self.con.clone();
        let before: i64 = self.bounded(inv.invoke_async(&mut con)).await?;
        Ok(u32::try_from(before).ok())
    }

    async fn clear_inner(&self, key: &str) -> Result<bool, CounterError> {
        let mut con = self.con.clone();
        let n: u64 = self
            .bounded(
                redis::cmd("DEL")
                    .arg(self.signal_key(key))
                    .query_async(&mut con),
            )
            .await?;
        Ok(n > 0)
    }

    async fn peek_inner(&self, key: &str) -> Result<Option<u32>, CounterError> {
        let mut con = self.con.clone();
        let v: Option<u32> = self
            .bounded(
                redis::cmd("GET")
                    .arg(self.signal_key(key))
                    .query_async(&mut con),
            )
            .await?;
        Ok(v)
    }

    async fn hourly_inner(
        &self,
        key: &str,
        n: u64,
        now: Millis,
        hours: u32,
    ) -> Result<Vec<u64>, CounterError> {
        let mut inv = self.signal_scripts.hourly.prepare_invoke();
        inv.key(self.signal_key(key))
            .arg(hour_of(now))
            .arg(n)
            .arg(hours.max(1));
        let mut con = self.con.clone();
        self.bounded(inv.invoke_async(&mut con)).await
    }

    async fn first_seen_inner(
        &self,
        key: &str,
        members: &[String],
        ttl_ms: i64,
        cap: usize,
    ) -> Result<u32, CounterError> {
        if members.is_empty() {
            return Ok(0);
        }
        let mut inv = self.signal_scripts.first_seen.prepare_invoke();
        inv.key(self.signal_key(key)).arg(ttl_ms.max(1)).arg(cap);
        for m in members {
            inv.arg(m);
        }
        let mut con = self.con.clone();
        self.bounded(inv.invoke_async(&mut con)).await
    }

    async fn mark_inner(&self, key: &str, at: Millis, ttl_ms: i64) -> Result<(), CounterError> {
        let mut inv = self.signal_scripts.mark.prepare_invoke();
        inv.key(self.signal_key(key)).arg(at).arg(ttl_ms.max(1));
        let mut con = self.con.clone();
        let _: i64 = self.bounded(inv.invoke_async(&mut con)).await?;
        Ok(())
    }

    async fn last_mark_inner(
        &self,
        key: &str,
        now: Millis,
    ) -> Result<Option<Millis>, CounterError> {
        let mut con = self.con.clone();
        let v: Option<String> = self
            .bounded(
                redis::cmd("GET")
                    .arg(self.signal_key(key))
                    .query_async(&mut con),
            )
            .await?;
        let parsed = v.as_deref().and_then(|v| {
            let (at, until) = v.split_once(':')?;
            Some((at.parse::<Millis>().ok()?, until.parse::<Millis>().ok()?))
        });
        Ok(parsed.and_then(|(at, until)| (until > now).then_some(at)))
    }

    async fn near_inner(
        &self,
        keys: &[String],
        member: &str,
        now: Millis,
        window_ms: i64,
        cap: usize,
    ) -> Result<Vec<String>, CounterError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.signal_scripts.near.prepare_invoke();
        for k in keys {
            inv.key(self.signal_key(k));
        }
        inv.arg(now).arg(window_ms).arg(cap.max(1)).arg(member);
        let mut con = self.con.clone();
        self.bounded(inv.invoke_async(&mut con)).await
    }
}

impl SignalStore for RedisCounters {
    fn reputation<'a>(
        &'a self,
        key: &'a str,
        spam: bool,
        clear_after: u32,
        now: Millis,
    ) -> CounterFuture<'a, Option<u32>> {
        Box::pin(self.reputation_inner(key, spam, clear_after, now))
    }

    fn clear_reputation<'a>(&'a self, key: &'a str) -> CounterFuture<'a, bool> {
        Box::pin(self.clear_inner(key))
    }

    /// Redis judges the expiry (set from the caller's `now`) by its own clock.
    fn peek_reputation<'a>(&'a self, key: &'a str, _now: Millis) -> CounterFuture<'a, Option<u32>> {
        Box::pin(self.peek_inner(key))
    }

    fn hourly<'a>(
        &'a self,
        key: &'a str,
        n: u64,
        now: Millis,
        hours: u32,
    ) -> CounterFuture<'a, Vec<u64>> {
        Box::pin(self.hourly_inner(key, n, now, hours))
    }

    fn first_seen<'a>(
        &'a self,
        key: &'a str,
        members: &'a [String],
        _now: Millis,
        ttl_ms: i64,
        cap: usize,
    ) -> CounterFuture<'a, u32> {
        Box::pin(self.first_seen_inner(key, members, ttl_ms, cap))
    }

    fn mark<'a>(&'a self, key: &'a str, at: Millis, ttl_ms: i64) -> CounterFuture<'a, ()> {
        Box::pin(self.mark_inner(key, at, ttl_ms))
    }

    fn last_mark<'a>(&'a self, key: &'a str, now: Millis) -> CounterFuture<'a, Option<Millis>> {
        Box::pin(self.last_mark_inner(key, now))
    }

    fn near<'a>(
        &'a self,
        keys: &'a [String],
        member: &'a str,
        now: Millis,
        window_ms: i64,
        cap: usize,
    ) -> CounterFuture<'a, Vec<String>> {
        Box::pin(self.near_inner(keys, member, now, window_ms, cap))
    }
}
