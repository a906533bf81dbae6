//! The Lua scripts behind [`super::RedisCounters`]: one script per counter operation, so every
//! operation is one atomic EVALSHA (Redis runs a script alone; no other client's command lands
//! between its reads and writes).
//!
//! Data layout, per counter key `K` (already under the configured prefix):
//! - `K` is a ZSET sliding log: one member per unit, scored with the unit's time (ms).
//!   Reservation units are `r:<seq>:<i>`, recorded units `c:<seq>:<i>` (`seq` from the meta
//!   hash, so members are unique and a release never touches a `record`ed unit).
//! - `K|m` is a HASH of meta data: `hw` (latest time anything was recorded at: new units go at
//!   `max(now, hw)`, which keeps the log time-ordered and the windows exact), `w` (the longest
//!   window ever asked of `K`: older units are pruned), `seq`.
//! - Both expire `w + 60 s` after the latest recording (idle keys vanish by themselves).
//! - A recent-outcomes LIST per key for the spam ratio (`RPUSH` + `LTRIM`).
//!
//! Time: with the server clock (`ARGV[1] == 'S'`) a script reads `redis.call('TIME')`, so the
//! nodes' own clocks never matter (allowed with effects replication, Redis ≥ 5 default). With
//! the caller's clock (`'C'`, for tests that travel in time) `ARGV[2]` is used instead.

/// Shared prelude: the clock, number formatting, and adding units to a log.
const PRELUDE: &str = r#"
local function fmt(x) return string.format('%.0f', x) end
local function clock()
  if ARGV[1] == 'S' then
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return tonumber(ARGV[2])
end
local function start_at(m, t)
  local hw = tonumber(redis.call('HGET', m, 'hw'))
  if hw and hw > t then return hw end
  return t
end
-- Add n units at `at` to log z (meta m), widen the retained window to w, prune, set TTLs.
local function add(z, m, at, w, t, n, tag)
  local oldw = tonumber(redis.call('HGET', m, 'w')) or 0
  if w < oldw then w = oldw end
  if w < 1 then w = 1 end
  local seq = redis.call('HINCRBY', m, 'seq', 1)
  redis.call('HSET', m, 'w', fmt(w))
  if n > 0 then redis.call('HSET', m, 'hw', fmt(at)) end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', fmt(at - w))
  local batch = {}
  for i = 0, n - 1 do
    batch[#batch + 1] = fmt(at)
    batch[#batch + 1] = tag .. seq .. ':' .. i
    if #batch >= 2000 then
      redis.call('ZADD', z, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then redis.call('ZADD', z, unpack(batch)) end
  local ttl = w + (at - t) + 60000
  redis.call('PEXPIRE', z, fmt(ttl))
  redis.call('PEXPIRE', m, fmt(ttl))
end
"#;

/// KEYS: `z1, m1, z2, m2, …` (distinct keys). ARGV: clock, now, n, then per check
/// `(key index 1-based, window ms, limit)`. Returns `{1, at_1.., count_1..}` when admitted,
/// `{0, check index 0-based, count}` when refused.
const RESERVE: &str = r#"
local t = clock()
local n = tonumber(ARGV[3])
local nkeys = #KEYS / 2
local at, win = {}, {}
for j = 1, nkeys do
  at[j] = start_at(KEYS[2 * j], t)
  win[j] = 0
end
local counts = {}
local nchecks = (#ARGV - 3) / 3
for i = 1, nchecks do
  local j = tonumber(ARGV[3 * i + 1])
  local w = tonumber(ARGV[3 * i + 2])
  local limit = tonumber(ARGV[3 * i + 3])
  local c = redis.call('ZCOUNT', KEYS[2 * j - 1], '(' .. fmt(at[j] - w), '+inf')
  if c + n > limit then return {0, i - 1, c} end
  counts[i] = c
  if w > win[j] then win[j] = w end
end
local out = {1}
for j = 1, nkeys do
  if n > 0 then add(KEYS[2 * j - 1], KEYS[2 * j], at[j], win[j], t, n, 'r:') end
  out[#out + 1] = at[j]
end
for i = 1, nchecks do out[#out + 1] = counts[i] end
return out
"#;

/// KEYS: the logs of one reservation. ARGV: n, then the time of each key's units. Removes `n`
/// reservation units recorded at exactly that time on each key.
const RELEASE: &str = r#"
local n = tonumber(ARGV[1])
for j = 1, #KEYS do
  local at = ARGV[j + 1]
  local gone = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[j], at, at)) do
    if gone >= n then break end
    if string.sub(m, 1, 2) == 'r:' then
      redis.call('ZREM', KEYS[j], m)
      gone = gone + 1
    end
  end
end
return 1
"#;

/// KEYS: z, m. ARGV: clock, now, n, window. Records n units, returns the count in the window.
const RECORD: &str = r#"
local t = clock()
local n = tonumber(ARGV[3])
local w = tonumber(ARGV[4])
local at = start_at(KEYS[2], t)
add(KEYS[1], KEYS[2], at, w, t, n, 'c:')
return redis.call('ZCOUNT', KEYS[1], '(' .. fmt(at - w), '+inf')
"#;

/// KEYS: z. ARGV: clock, now, window.
const COUNT: &str = r#"
local t = clock()
return redis.call('ZCOUNT', KEYS[1], '(' .. fmt(t - tonumber(ARGV[3])), '+inf')
"#;

/// KEYS: the list. ARGV: '1' (spam) or '0', keep, ttl ms. Returns `{spam, total}`.
const PUSH_RECENT: &str = r#"
local keep = tonumber(ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -keep, -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local spam, all = 0, redis.call('LRANGE', KEYS[1], 0, -1)
for _, v in ipairs(all) do
  if v == '1' then spam = spam + 1 end
end
return {spam, #all}
"#;

/// The compiled scripts (their SHA1 is computed once; `invoke_async` does EVALSHA and loads
/// the script on `NOSCRIPT`, e.g. after a Redis restart).
pub(super) struct Scripts {
    pub reserve: redis::Script,
    pub release: redis::Script,
    pub record: redis::Script,
    pub count: redis::Script,
    pub push_recent: redis::Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        let with_prelude = |body: &str| redis::Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            reserve: with_prelude(RESERVE),
            release: redis::Script::new(RELEASE),
            record: with_prelude(RECORD),
            count: with_prelude(COUNT),
            push_recent: redis::Script::new(PUSH_RECENT),
        }
    }
}
