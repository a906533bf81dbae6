//! The embedded counter store (the `outguard_policy::Counters` contract, like
//! [`crate::redis_counters`]): exact sliding windows in process memory, sharded behind one
//! mutex per shard, persisted to a snapshot file so a restart keeps the windows.
//!
//! Each key is a time-ordered series of events with running sums, so a window count is a
//! binary search (O(log n)) rather than a scan; a reservation locks the shards of its keys in
//! index order (no deadlock) and decides under those locks (atomic). Locks are never held
//! across an `.await`: every operation completes synchronously and returns a ready future.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use outguard_policy::counters::{
    CounterError, CounterFuture, Counters, DAY_MS, Reservation, ReserveOutcome, WindowCheck,
};

const SHARDS: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Event {
    at: Millis,
    n: u64,
    /// Running sum of the series up to and including this event.
    cum: u64,
}

#[derive(Debug, Default)]
struct Series {
    events: VecDeque<Event>,
    /// Longest window ever asked of this key; older events are dropped.
    retain_ms: i64,
    /// Latest time anything was recorded at (never goes back, even when a released event is
    /// dropped): new events are recorded at `max(now, high_water)`, and pruning never uses a
    /// later time than that, which together keep every window exact.
    high_water: Option<Millis>,
}

impl Series {
    fn latest(&self) -> Option<Millis> {
        self.high_water
    }

    /// Sum of units with `at > now - window_ms`.
    fn count(&self, window_ms: i64, now: Millis) -> u64 {
        let start = now.saturating_sub(window_ms);
        // Pruning keeps the front near the longest window, so the whole series is usually
        // inside it: skip the search (and its cache misses) then.
        let idx = match self.events.front() {
            Some(f) if f.at > start => 0,
            _ => self.events.partition_point(|e| e.at <= start),
        };
        match (self.events.get(idx), self.events.back()) {
            (Some(first), Some(last)) => last.cum - (first.cum - first.n),
            _ => 0,
        }
    }

    fn add(&mut self, at: Millis, n: u64) {
        self.high_water = Some(self.high_water.map_or(at, |h| h.max(at)));
        let cum = self.events.back().map_or(0, |e| e.cum) + n;
        match self.events.back_mut() {
            Some(last) if last.at == at => {
                last.n += n;
                last.cum = cum;
            }
            _ => self.events.push_back(Event { at, n, cum }),
        }
    }

    fn remove(&mut self, at: Millis, n: u64) {
        let idx = self.events.partition_point(|e| e.at < at);
        let Some(ev) = self.events.get_mut(idx).filter(|e| e.at == at) else {
            return;
        };
        let dec = ev.n.min(n);
        ev.n -= dec;
        for e in self.events.range_mut(idx..) {
            e.cum -= dec;
        }
        // Releases usually undo the latest reservation: drop the empty event.
        if self.events.back().is_some_and(|e| e.n == 0) {
            self.events.pop_back();
        }
    }

    fn prune(&mut self, now: Millis) {
        let horizon = self
            .latest()
            .map_or(now, |l| l.max(now))
            .saturating_sub(self.retain_ms.max(1));
        while self.events.front().is_some_and(|e| e.at <= horizon) {
            self.events.pop_front();
        }
    }

    fn note_window(&mut self, window_ms: i64) {
        self.retain_ms = self.retain_ms.max(window_ms);
    }
}

#[derive(Debug, Default)]
struct Shard {
    series: HashMap<String, Series>,
    recent: HashMap<String, VecDeque<bool>>,
}

/// In-process, exact, concurrency-safe counters; see the module docs.
pub struct MemoryCounters {
    shards: Vec<Mutex<Shard>>,
    /// The sender signals' state (`crate::memory_signals`), saved in the same snapshot.
    signals: Mutex<crate::memory_signals::SignalState>,
}

impl Default for MemoryCounters {
    fn default() -> Self {
        MemoryCounters::new()
    }
}

fn shard_of(key: &str) -> usize {
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding the lock cannot leave a shard half-updated in a way that breaks
    // the invariants worse than losing the update, so keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryCounters {
    pub fn new() -> MemoryCounters {
        MemoryCounters {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            signals: Mutex::new(Default::default()),
        }
    }

    pub(crate) fn signals(&self) -> MutexGuard<'_, crate::memory_signals::SignalState> {
        self.signals.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reserve_now(&self, checks: &[WindowCheck], n: u32, now: Millis) -> ReserveOutcome {
        let mut idx: Vec<usize> = checks.iter().map(|c| shard_of(&c.key)).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards: Vec<(usize, MutexGuard<'_, Shard>)> = idx
            .into_iter()
            .map(|i| (i, lock(&self.shards[i])))
            .collect();
        let shard = |guards: &mut Vec<(usize, MutexGuard<'_, Shard>)>, key: &str| -> usize {
            let s = shard_of(key);
            guards.iter().position(|(i, _)| *i == s).unwrap_or(0)
        };
        // Every key is recorded at max(now, its latest event): the series stays time-ordered.
        let mut counts = Vec::with_capacity(checks.len());
        for (i, c) in checks.iter().enumerate() {
            let g = shard(&mut guards, &c.key);
            let series = guards[g].1.series.get(&c.key);
            let at = series.and_then(Series::latest).map_or(now, |l| l.max(now));
            let count = series.map_or(0, |s| s.count(c.window_ms, at));
            if count + u64::from(n) > c.limit {
                return ReserveOutcome::Refused { index: i, count };
            }
            counts.push(count);
        }
        let mut entries: Vec<(String, Millis)> = Vec::with_capacity(checks.len());
        for c in checks {
            if n == 0 || entries.iter().any(|(k, _)| *k == c.key) {
                continue;
            }
            let g = shard(&mut guards, &c.key);
            let window = checks
                .iter()
                .filter(|x| x.key == c.key)
                .map(|x| x.window_ms)
                .max()
                .unwrap_or(c.window_ms);
            let series = guards[g].1.series.entry(c.key.clone()).or_default();
            series.note_window(window);
            let at = series.latest().map_or(now, |l| l.max(now));
            series.prune(at);
            series.add(at, u64::from(n));
            entries.push((c.key.clone(), at));
        }
        ReserveOutcome::Admitted(Reservation { n, entries, counts })
    }

    fn release_now(&self, r: &Reservation) {
        for (key, at) in &r.entries {
            let mut g = lock(&self.shards[shard_of(key)]);
            if let Some(s) = g.series.get_mut(key) {
                s.remove(*at, u64::from(r.n));
            }
        }
    }

    fn record_now(&self, key: &str, n: u32, window_ms: i64, now: Millis) -> u64 {
        let mut g = lock(&self.shards[shard_of(key)]);
        let series = g.series.entry(key.to_string()).or_default();
        series.note_window(window_ms);
        let at = series.latest().map_or(now, |l| l.max(now));
        series.prune(at);
        if n > 0 {
            series.add(at, u64::from(n));
        }
        series.count(window_ms, at)
    }

    fn count_now(&self, key: &str, window_ms: i64, now: Millis) -> u64 {
        let g = lock(&self.shards[shard_of(key)]);
        g.series.get(key).map_or(0, |s| s.count(window_ms, now))
    }

    fn push_recent_now(&self, key: &str, is_spam: bool, keep: usize) -> (u32, u32) {
        let mut g = lock(&self.shards[shard_of(key)]);
        let list = g.recent.entry(key.to_string()).or_default();
        list.push_back(is_spam);
        while list.len() > keep.max(1) {
            list.pop_front();
        }
        let spam = list.iter().filter(|s| **s).count();
        (spam as u32, list.len() as u32)
    }

    /// Drop events no window can see any more and empty series (bounded memory).
    pub fn sweep(&self, now: Millis) {
        self.signals().sweep(now);
        for shard in &self.shards {
            let mut g = lock(shard);
            g.series.retain(|_, s| {
                s.prune(now);
                // Forget a key only once nothing it recorded can be in any window again.
                let empty = s.events.iter().all(|e| e.n == 0);
                !(empty
                    && s.high_water
                        .is_none_or(|h| h <= now.saturating_sub(s.retain_ms)))
            });
        }
    }

    /// Number of live keys (for metrics and tests).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).series.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Counters for MemoryCounters {
    fn reserve<'a>(
        &'a self,
        checks: &'a [WindowCheck],
        n: u32,
        now: Millis,
    ) -> CounterFuture<'a, ReserveOutcome> {
        Box::pin(std::future::ready(Ok(self.reserve_now(checks, n, now))))
    }

    fn release<'a>(&'a self, reservation: &'a Reservation) -> CounterFuture<'a, ()> {
        self.release_now(reservation);
        Box::pin(std::future::ready(Ok(())))
    }

    fn record<'a>(
        &'a self,
        key: &'a str,
        n: u32,
        window_ms: i64,
        now: Millis,
    ) -> CounterFuture<'a, u64> {
        Box::pin(std::future::ready(Ok(
            self.record_now(key, n, window_ms, now)
        )))
    }

    fn count<'a>(&'a self, key: &'a str, window_ms: i64, now: Millis) -> CounterFuture<'a, u64> {
        Box::pin(std::future::ready(Ok(self.count_now(key, window_ms, now))))
    }

    fn push_recent<'a>(
        &'a self,
        key: &'a str,
        is_spam: bool,
        keep: usize,
    ) -> CounterFuture<'a, (u32, u32)> {
        Box::pin(std::future::ready(Ok(
            self.push_recent_now(key, is_spam, keep)
        )))
    }
}

// ---- persistence -------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct SnapshotSeries {
    retain_ms: i64,
    #[serde(default)]
    high_water: Option<Millis>,
    /// `(at, units)` in time order.
    events: Vec<(Millis, u64)>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    series: HashMap<String, SnapshotSeries>,
    recent: HashMap<String, Vec<bool>>,
    /// Absent in snapshots written before the sender signals existed.
    #[serde(default)]
    signals: Option<crate::memory_signals::SignalState>,
}

fn io_err(path: &Path, source: std::io::Error) -> CounterError {
    CounterError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl MemoryCounters {
    /// The snapshot file's conventional place under the data directory.
    pub fn snapshot_path(data_dir: &Path) -> PathBuf {
        data_dir.join("counters.json")
    }

    /// Load a snapshot written by [`MemoryCounters::save`]; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<MemoryCounters, CounterError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MemoryCounters::new()),
            Err(e) => return Err(io_err(path, e)),
        };
        let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| CounterError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let me = MemoryCounters::new();
        if let Some(signals) = snap.signals {
            *me.signals() = signals;
        }
        for (key, s) in snap.series {
            let mut series = Series {
                events: VecDeque::new(),
                retain_ms: s.retain_ms,
                high_water: s.high_water,
            };
            let mut events = s.events;
            events.sort_by_key(|(at, _)| *at);
            for (at, n) in events {
                series.add(at, n);
            }
            lock(&me.shards[shard_of(&key)]).series.insert(key, series);
        }
        for (key, list) in snap.recent {
            lock(&me.shards[shard_of(&key)])
                .recent
                .insert(key, list.into());
        }
        Ok(me)
    }

    /// Sweep then [`save`](Self::save) on the blocking pool.
    async fn save_blocking(
        self: &std::sync::Arc<Self>,
        path: &Path,
        now: Millis,
    ) -> Result<(), CounterError> {
        let (me, path) = (self.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || {
            me.sweep(now);
            me.save(&path)
        })
        .await
        .unwrap_or_else(|e| {
            Err(CounterError::Unavailable(format!(
                "snapshot task failed: {e}"
            )))
        })
    }

    /// Write a snapshot atomically: temp file in the same directory, fsync, rename, fsync the
    /// directory. Each shard is copied under its own lock (no global pause).
    pub fn save(&self, path: &Path) -> Result<(), CounterError> {
        use std::io::Write;
        let mut snap = Snapshot {
            version: 1,
            series: HashMap::new(),
            recent: HashMap::new(),
            signals: Some(self.signals().clone()),
        };
        for shard in &self.shards {
            let g = lock(shard);
            for (k, s) in &g.series {
                let events = s
                    .events
                    .iter()
                    .filter(|e| e.n > 0)
                    .map(|e| (e.at, e.n))
                    .collect();
                snap.series.insert(
                    k.clone(),
                    SnapshotSeries {
                        retain_ms: s.retain_ms,
                        high_water: s.high_water,
                        events,
                    },
                );
            }
            for (k, l) in &g.recent {
                snap.recent.insert(k.clone(), l.iter().copied().collect());
            }
        }
        let bytes = serde_json::to_vec(&snap).map_err(|e| CounterError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("counters.json")
        ));
        // Owner-only whatever the umask (SPEC §9 "Files"): the windows name every account.
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
        }
        .map_err(|e| io_err(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().map_err(|e| io_err(dir, e))?;
        }
        Ok(())
    }

    /// Snapshot every `interval` until `shutdown` completes, then once more. `now` supplies the
    /// clock for sweeping expired events before each write. Run it as a named task. Each write
    /// (serialise + fsync) runs on the blocking pool, never on a thread that serves sessions;
    /// a failed interval write (a full disk) is retried at the next tick, only the final one is
    /// returned.
    pub async fn persist_until<F, C>(
        self: &std::sync::Arc<Self>,
        path: &Path,
        interval: std::time::Duration,
        now: C,
        shutdown: F,
    ) -> Result<(), CounterError>
    where
        F: std::future::Future<Output = ()>,
        C: Fn() -> Millis,
    {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.save_blocking(path, now()).await {
                        tracing::error!(error = %e, "cannot save the counter snapshot; retrying at the next interval");
                    }
                }
                _ = &mut shutdown => {
                    return self.save_blocking(path, now()).await;
                }
            }
        }
    }
}

/// Longest window the policy uses; snapshots older than this are worthless.
pub const MAX_WINDOW_MS: i64 = DAY_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_counts_by_window() {
        let mut s = Series::default();
        s.note_window(100);
        for t in [10, 20, 20, 30, 50] {
            s.add(t, 1);
        }
        assert_eq!(s.count(100, 50), 5);
        assert_eq!(s.count(30, 50), 2, "(20, 50] holds 30 and 50");
        assert_eq!(s.count(31, 50), 4, "(19, 50] holds 20,20,30,50");
        s.remove(20, 1);
        assert_eq!(s.count(31, 50), 3);
        assert_eq!(s.count(100, 50), 4);
        s.prune(115);
        assert_eq!(s.events.front().map(|e| e.at), Some(20));
        assert_eq!(s.count(100, 115), 3);
    }
}
