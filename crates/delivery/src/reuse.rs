//! Idle SMTP sessions to next hops, kept so the next message for the same place skips the
//! connect, greeting, EHLO and STARTTLS round trips and goes straight to MAIL FROM.
//!
//! A session is parked only after a transaction that ended in a known clean state (`client`
//! decides: reply to the dot or an accepted RSET, never after an error or a 421), keyed by
//! source IP, remote address, hop host name and whether TLS was wanted, so a message never
//! leaves from another pool address or under another TLS policy than a fresh connection would.
//!
//! Limits: a session idle for `MAX_IDLE` is closed with QUIT (the reaper, and `take` for any it
//! has not reached yet); a session carries at most `MAX_USES` transactions (or a shaping rule's
//! `max_messages_per_connection`); at most `per_key`
//! sessions wait per key (the per-destination connection limit), extra ones are closed. Parked
//! sessions hold no connection permit: the permits bound the transactions in progress. On
//! shutdown every parked session gets QUIT and nothing is parked any more.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{Attempt, Session};

/// An idle session is closed after this long without a transaction.
pub const MAX_IDLE: Duration = Duration::from_secs(5);
/// Transactions per connection before it is closed instead of parked.
pub const MAX_USES: u32 = 100;
/// How often the reaper looks for expired sessions.
const REAP_EVERY: Duration = Duration::from_millis(500);

/// What a parked session may be reused for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub source_ip: IpAddr,
    pub remote: SocketAddr,
    pub host: String,
    pub tls_wanted: bool,
    /// A session opened under a weaker policy (or another login) never serves a stricter one.
    pub tls_policy: outguard_types::config::TlsPolicy,
    pub auth_user: Option<String>,
}

impl Key {
    pub fn of(a: &Attempt<'_>) -> Key {
        Key {
            source_ip: a.source_ip,
            remote: a.hop.addr,
            host: a.hop.host.to_ascii_lowercase(),
            tls_wanted: a.tls.is_some(),
            tls_policy: a.tls_policy,
            auth_user: a.auth.map(|(u, _)| u.to_string()),
        }
    }
}

struct Parked {
    session: Session,
    since: Instant,
}

/// The idle sessions, per key, oldest first.
pub struct IdlePool {
    idle: Mutex<HashMap<Key, Vec<Parked>>>,
    per_key: usize,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn close(session: Session) {
    tokio::spawn(session.quit());
}

impl IdlePool {
    /// `per_key`: how many sessions may wait per key (at least 1).
    pub fn new(per_key: usize) -> IdlePool {
        IdlePool {
            idle: Mutex::new(HashMap::new()),
            per_key: per_key.max(1),
            closed: AtomicBool::new(false),
        }
    }

    /// The most recently parked live session for `key`; expired ones met on the way are closed.
    pub fn take(&self, key: &Key) -> Option<Session> {
        let mut expired = Vec::new();
        let found = {
            let mut idle = lock(&self.idle);
            let list = idle.get_mut(key)?;
            let found = list.pop().filter(|p| p.since.elapsed() < MAX_IDLE);
            if found.is_none() {
                // The newest one was expired (or there was none): so are all older ones.
                expired.append(list);
            }
            if list.is_empty() {
                idle.remove(key);
            }
            found
        };
        expired.into_iter().for_each(|p| close(p.session));
        found.map(|p| p.session)
    }

    /// Keep `session` for the next message to `key`, or close it when it has carried
    /// `max_uses` transactions, is not clean, the key is full or the pool is shut down.
    pub fn park(&self, key: Key, session: Session, max_uses: u32) {
        if session.used >= max_uses || !session.is_clean() || self.closed.load(Ordering::SeqCst) {
            return close(session);
        }
        let mut idle = lock(&self.idle);
        let list = idle.entry(key).or_default();
        if list.len() >= self.per_key {
            drop(idle);
            return close(session);
        }
        list.push(Parked {
            session,
            since: Instant::now(),
        });
    }

    /// Close every session idle for `MAX_IDLE` or more.
    fn reap(&self) {
        let mut expired = Vec::new();
        lock(&self.idle).retain(|_, list| {
            let live = list.partition_point(|p| p.since.elapsed() >= MAX_IDLE);
            expired.extend(list.drain(..live));
            !list.is_empty()
        });
        expired.into_iter().for_each(|p| close(p.session));
    }

    /// Reap expired sessions until `stop`, then QUIT every parked session and refuse new ones.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(REAP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.reap(),
                _ = stop.cancelled() => break,
            }
        }
        self.closed.store(true, Ordering::SeqCst);
        let all: Vec<Parked> = lock(&self.idle).drain().flat_map(|(_, l)| l).collect();
        futures::future::join_all(all.into_iter().map(|p| p.session.quit())).await;
    }
}
