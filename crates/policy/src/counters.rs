//! The counter store contract (STYLE rule 7): a few atomic operations over sliding windows, so
//! the backends of `outguard-store` — in-process `MemoryCounters` (persisted to a snapshot
//! file) and `RedisCounters` (one Lua script per operation) — give the same answers.
//!
//! Contract, for every backend:
//! - A key is a series of `(time, units)` events. `count(key, W, now)` is the sum of the units
//!   recorded in the half-open span `(now - W, now]` (plus any recorded later than `now`).
//! - `reserve` is atomic over all its checks: either every check admits (`count + n <= limit`)
//!   and `n` units are recorded once on every distinct key, or nothing is recorded and the
//!   first refusing check is reported. Windows are exact: a key whose checks use limit N over
//!   W can never hold more than N units in any span of length W, whatever the arrival order
//!   of callers' `now`. (Backends keep each key's events in time order by recording at
//!   `max(now, latest event of the key)`; a late caller is counted a few ms later, never
//!   earlier, which is what keeps the bound exact.)
//! - `release` gives back exactly what one admitted reservation recorded (at most once).
//! - The trait is object-safe: methods return boxed futures, so the relay holds an
//!   `Arc<dyn Counters>` chosen from the `counters` URL at start-up.

use std::future::Future;
use std::pin::Pin;

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

/// A boxed, `Send` future as every [`Counters`] method returns (object safety).
pub type CounterFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CounterError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
    #[error("counter snapshot {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("counter snapshot {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
}

/// One window to check in a reservation: `count(key, window_ms) + n <= limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCheck {
    pub key: String,
    pub window_ms: i64,
    pub limit: u64,
}

/// What one admitted reservation recorded: `n` units on each key at the given time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub n: u32,
    pub entries: Vec<(String, Millis)>,
    /// The count of each check (in request order) before this reservation was added.
    pub counts: Vec<u64>,
}

impl Reservation {
    /// A reservation that recorded nothing (no check applied).
    pub fn empty() -> Reservation {
        Reservation {
            n: 0,
            entries: Vec::new(),
            counts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Admitted(Reservation),
    /// `index` into the request of the first check that refused, and its count then.
    Refused {
        index: usize,
        count: u64,
    },
}

/// The counter store. See the module docs for the contract every backend keeps.
pub trait Counters: Send + Sync {
    /// Atomically reserve `n` units in every listed window, or nothing.
    fn reserve<'a>(
        &'a self,
        checks: &'a [WindowCheck],
        n: u32,
        now: Millis,
    ) -> CounterFuture<'a, ReserveOutcome>;

    /// Give back an admitted reservation (the transaction was not completed).
    fn release<'a>(&'a self, reservation: &'a Reservation) -> CounterFuture<'a, ()>;

    /// Record `n` units at `now` without a limit; returns the count in `(now - window_ms, now]`
    /// after recording (one round trip for "count this spam message, how many this hour?").
    fn record<'a>(
        &'a self,
        key: &'a str,
        n: u32,
        window_ms: i64,
        now: Millis,
    ) -> CounterFuture<'a, u64>;

    /// Units recorded in `(now - window_ms, now]`.
    fn count<'a>(&'a self, key: &'a str, window_ms: i64, now: Millis) -> CounterFuture<'a, u64>;

    /// Append one outcome to a bounded list of the latest `keep` outcomes; returns (spam, total)
    /// over the list after appending (the last-20 spam ratio).
    fn push_recent<'a>(
        &'a self,
        key: &'a str,
        is_spam: bool,
        keep: usize,
    ) -> CounterFuture<'a, (u32, u32)>;
}

/// Milliseconds in the windows the policy uses.
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
