//! Alert webhooks (SPEC §3, config `[[webhooks.hooks]] url, secret, kinds`): each alert is
//! POSTed as JSON to every webhook whose `kinds` is empty or names the alert's kind, signed with
//! `X-Outguard-Signature: sha256=<hex HMAC-SHA256(secret, body)>` plus `X-Outguard-Timestamp`
//! (Unix seconds of the attempt). A failed attempt (network error, timeout, non-2xx) is retried
//! after 1 s, 5 s, 30 s, 2 min and 10 min, then dropped with an error log: the alert itself is
//! in the store either way.
//!
//! [`Webhooks::send`] never blocks the caller: it queues on a bounded channel for one sender
//! task. The task keeps at most [`MAX_PENDING`] deliveries waiting (newer ones are dropped with
//! a warning when full), runs at most [`MAX_INFLIGHT`] attempts at a time, and ends when
//! [`Webhooks::close`] is called or the handle is dropped (pending retries are abandoned).
//!
//! Targets are the config's webhooks plus the store's subscriptions (`/api/v1/webhooks`): a
//! stored one names a tenant (only that tenant's alerts) or none (every alert). The stored list
//! is cached and reloaded when the store's `webhooks_version` moves (polled every second, and at
//! once after a change through this node's API), so every node follows within about a second.
//!
//! Trust (SPEC §9): the config's hooks are the operator's and go anywhere; a stored subscription
//! may only reach public addresses ([`addr`]), checked when it is made
//! ([`Webhooks::check_subscription`]) and again at every attempt against the addresses the
//! attempt connects to ([`client`]); a refused attempt is logged (`webhook refused`) and not
//! retried. The client is a minimal HTTP/1.1 one (`Connection: close`, status line read only)
//! over TCP or rustls.

pub mod addr;
mod client;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use outguard_policy::{Alert, AlertKind};
use outguard_store::{Store, StoreError, StoredWebhook};
use outguard_types::config::{Config, WebhookConfig};
use outguard_types::webhook_url::WebhookUrl;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Delays before the 2nd, 3rd, … attempt.
pub const RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];
/// Deliveries waiting (queued or between retries) before new ones are dropped.
pub const MAX_PENDING: usize = 10_000;
/// Attempts running at once.
pub const MAX_INFLIGHT: usize = 8;
const CHANNEL: usize = 1024;
/// Resolve + connect + TLS + write + read of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often each node polls the store's webhook version.
pub const STORE_POLL: Duration = Duration::from_secs(1);

pub use client::{AttemptError, Dialer, SetupError};

struct Hook {
    url: String,
    target: WebhookUrl,
    /// A subscription made through the API: public addresses only (SPEC §9).
    restricted: bool,
    secret: Vec<u8>,
    /// Empty: every kind.
    kinds: Vec<String>,
    /// `Some`: only this tenant's alerts (stored subscriptions); `None`: every alert.
    tenant: Option<String>,
}

impl Hook {
    fn parse(
        url: &str,
        secret: &str,
        kinds: &[String],
        tenant: Option<&str>,
        restricted: bool,
    ) -> Option<Hook> {
        match WebhookUrl::parse(url) {
            Ok(target) => Some(Hook {
                url: url.to_string(),
                target,
                restricted,
                secret: secret.as_bytes().to_vec(),
                kinds: kinds.to_vec(),
                tenant: tenant.map(str::to_string),
            }),
            Err(e) => {
                tracing::error!(url, error = %e, "webhook skipped");
                None
            }
        }
    }

    fn wants(&self, alert: &Alert) -> bool {
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| k == alert.kind.as_str());
        let tenant_ok = self.tenant.is_none() || self.tenant.as_deref() == alert.tenant.as_deref();
        kind_ok && tenant_ok
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new(); // HMAC takes keys of any length; not reached.
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

struct Job {
    hook: Arc<Hook>,
    body: Arc<Vec<u8>>,
    kind: AlertKind,
    /// Attempts made so far.
    attempts: usize,
}

/// Handle to the webhook sender task. Cheap to keep in the relay; [`Webhooks::send`] is sync.
pub struct Webhooks {
    tx: Option<mpsc::Sender<Job>>,
    dialer: Arc<Dialer>,
    hooks: Vec<Arc<Hook>>,
    stored: Option<Arc<StoredHooks>>,
    stop: watch::Sender<bool>,
}

/// The store's subscriptions as last loaded, and the version they were loaded at.
struct StoredHooks {
    store: Store,
    /// Held across a reload so two reloads do not interleave.
    version: tokio::sync::Mutex<Option<i64>>,
    hooks: std::sync::RwLock<Arc<Vec<Arc<Hook>>>>,
}

impl StoredHooks {
    fn snapshot(&self) -> Arc<Vec<Arc<Hook>>> {
        self.hooks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the list when the version moved (or always, with `force`).
    async fn refresh(&self, force: bool) -> Result<(), StoreError> {
        let mut seen = self.version.lock().await;
        let now = self.store.webhooks_version().await?;
        if !force && *seen == Some(now) {
            return Ok(());
        }
        let list: Vec<StoredWebhook> = self.store.list_webhooks(None).await?;
        let hooks: Vec<Arc<Hook>> = list
            .iter()
            .filter_map(|w| Hook::parse(&w.url, &w.secret, &w.kinds, w.tenant.as_deref(), true))
            .map(Arc::new)
            .collect();
        tracing::debug!(version = now, count = hooks.len(), "stored webhooks loaded");
        *self.hooks.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(hooks);
        *seen = Some(now);
        Ok(())
    }
}

/// Polls the store's webhook version until stopped.
async fn poll_store(stored: Arc<StoredHooks>, mut stopped: watch::Receiver<bool>) {
    loop {
        if let Err(e) = stored.refresh(false).await {
            tracing::warn!(error = %e, "cannot reload stored webhooks; keeping the last list");
        }
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(STORE_POLL) => {}
        }
    }
}

impl Webhooks {
    /// Webhooks from `configs` only (no store), with the standard retry schedule and the
    /// default `[webhooks]`/`[dns]` settings. Starts the sender task on the current tokio
    /// runtime when at least one usable webhook is configured.
    #[cfg(test)]
    pub fn new(configs: &[WebhookConfig]) -> Webhooks {
        Webhooks::with_schedule(configs, RETRY_SCHEDULE.to_vec())
    }

    /// The config's webhooks (`[webhooks]`, `[dns]`) plus the store's subscriptions (kept in
    /// step with the store). The sender task always starts, since subscriptions can be added at
    /// any time. Fails on an unusable `extra_roots` or resolver.
    pub fn with_store(cfg: &Config, store: Store) -> Result<Webhooks, SetupError> {
        let dialer = Dialer::new(&cfg.webhooks, &cfg.dns)?;
        Ok(Webhooks::build(
            &cfg.webhooks.hooks,
            Some(store),
            RETRY_SCHEDULE.to_vec(),
            Arc::new(dialer),
        ))
    }

    /// Like [`Webhooks::new`] with another retry schedule (tests use milliseconds).
    #[cfg(test)]
    pub fn with_schedule(configs: &[WebhookConfig], schedule: Vec<Duration>) -> Webhooks {
        let dialer = Dialer::new(
            &outguard_types::config::WebhooksConfig::default(),
            &outguard_types::config::DnsConfig::default(),
        )
        .expect("default dialer");
        Webhooks::build(configs, None, schedule, Arc::new(dialer))
    }

    fn build(
        configs: &[WebhookConfig],
        store: Option<Store>,
        schedule: Vec<Duration>,
        dialer: Arc<Dialer>,
    ) -> Webhooks {
        let hooks: Vec<Arc<Hook>> = configs
            .iter()
            .filter_map(|c| Hook::parse(&c.url, &c.secret, &c.kinds, None, false))
            .map(Arc::new)
            .collect();
        let stored = store.map(|store| {
            Arc::new(StoredHooks {
                store,
                version: tokio::sync::Mutex::new(None),
                hooks: std::sync::RwLock::new(Arc::new(Vec::new())),
            })
        });
        let (stop, stopped) = watch::channel(false);
        let mut tx = None;
        if !hooks.is_empty() || stored.is_some() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let (sender, rx) = mpsc::channel(CHANNEL);
                    rt.spawn(run(rx, stopped.clone(), schedule, dialer.clone()));
                    if let Some(stored) = &stored {
                        rt.spawn(poll_store(stored.clone(), stopped));
                    }
                    tx = Some(sender);
                }
                Err(_) => tracing::error!("webhooks configured but no async runtime: disabled"),
            }
        }
        Webhooks {
            tx,
            dialer,
            hooks,
            stored,
            stop,
        }
    }

    /// Whether a subscription to `url` may be stored (SPEC §9): `http(s)://`, no user info or
    /// control characters, and every address the host resolves to now is public (or opened by
    /// `[webhooks] allow_private`). The error is the message for a 422.
    pub async fn check_subscription(&self, url: &str) -> Result<(), String> {
        self.dialer.check_subscription(url).await.map(|_| ())
    }

    /// Reloads the stored subscriptions now (after a change through this node's API, so the
    /// change holds here before the call returns; other nodes follow on their next poll).
    pub async fn reload(&self) -> Result<(), StoreError> {
        match &self.stored {
            Some(stored) => stored.refresh(true).await,
            None => Ok(()),
        }
    }

    /// Queue `alert` for every webhook that wants its kind. Never blocks; a full queue drops
    /// the delivery with a warning (the alert stays in the store).
    pub fn send(&self, alert: &Alert) {
        let Some(tx) = &self.tx else { return };
        let body = match serde_json::to_vec(alert) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode alert for webhooks");
                return;
            }
        };
        let stored = self.stored.as_ref().map(|s| s.snapshot());
        let all = self
            .hooks
            .iter()
            .chain(stored.iter().flat_map(|s| s.iter()));
        for hook in all {
            if !hook.wants(alert) {
                continue;
            }
            let job = Job {
                hook: hook.clone(),
                body: body.clone(),
                kind: alert.kind,
                attempts: 0,
            };
            if tx.try_send(job).is_err() {
                tracing::warn!(url = %hook.url, kind = alert.kind.as_str(), "webhook queue full or closed; delivery dropped");
            }
        }
    }

    /// Stop the sender task (pending retries are abandoned). Idempotent.
    pub fn close(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.close();
    }
}

/// A delivery waiting for its time; ordered by due time, then arrival.
struct Pending {
    due: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// The sender task: a timer heap of due deliveries, a bounded set of running attempts.
async fn run(
    mut rx: mpsc::Receiver<Job>,
    mut stopped: watch::Receiver<bool>,
    schedule: Vec<Duration>,
    dialer: Arc<Dialer>,
) {
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut running: JoinSet<(Job, Result<u16, AttemptError>)> = JoinSet::new();
    let mut seq = 0u64;
    let mut open = true;
    loop {
        // Start whatever is due, up to the concurrency bound.
        let now = Instant::now();
        while running.len() < MAX_INFLIGHT && heap.peek().is_some_and(|Reverse(p)| p.due <= now) {
            let Some(Reverse(p)) = heap.pop() else { break };
            let dialer = dialer.clone();
            running.spawn(async move {
                let result = attempt(&dialer, &p.job).await;
                (p.job, result)
            });
        }
        if !open && heap.is_empty() && running.is_empty() {
            return;
        }
        let next_due = heap
            .peek()
            .filter(|_| running.len() < MAX_INFLIGHT)
            .map(|Reverse(p)| p.due);
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            job = rx.recv(), if open => match job {
                Some(job) if heap.len() + running.len() < MAX_PENDING => {
                    seq += 1;
                    heap.push(Reverse(Pending { due: Instant::now(), seq, job }));
                }
                Some(job) => tracing::warn!(url = %job.hook.url, "webhook backlog full; delivery dropped"),
                None => open = false,
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                let Ok((mut job, result)) = done else { continue };
                let hook = job.hook.clone();
                job.attempts += 1;
                match result {
                    Ok(status) => tracing::info!(url = %hook.url, kind = job.kind.as_str(), status, attempts = job.attempts, "webhook delivered"),
                    // A policy answer, not a failure: retrying would only probe again.
                    Err(AttemptError::Refused(r)) => tracing::warn!(url = %hook.url, kind = job.kind.as_str(), address = %r.ip, reason = r.why, "webhook refused: not a public address; not retried"),
                    Err(e) => match schedule.get(job.attempts - 1) {
                        Some(delay) => {
                            tracing::warn!(url = %hook.url, kind = job.kind.as_str(), error = %e, retry_in = ?delay, "webhook attempt failed");
                            seq += 1;
                            heap.push(Reverse(Pending { due: Instant::now() + *delay, seq, job }));
                        }
                        None => tracing::error!(url = %hook.url, kind = job.kind.as_str(), error = %e, attempts = job.attempts, "webhook given up"),
                    },
                }
            }
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One POST; Ok(status) for a 2xx answer.
async fn attempt(dialer: &Dialer, job: &Job) -> Result<u16, AttemptError> {
    let hook = &job.hook;
    let t = &hook.target;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: outguard/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nX-Outguard-Event: {}\r\nX-Outguard-Signature: {}\r\n\
         X-Outguard-Timestamp: {}\r\nConnection: close\r\n\r\n",
        t.path,
        t.host_header(),
        env!("CARGO_PKG_VERSION"),
        job.body.len(),
        job.kind.as_str(),
        signature(&hook.secret, &job.body),
        unix_secs(),
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&job.body);
    match tokio::time::timeout(ATTEMPT_TIMEOUT, dialer.send(t, hook.restricted, &request)).await {
        Ok(result) => result,
        Err(_) => Err(AttemptError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {ATTEMPT_TIMEOUT:?}"),
        ))),
    }
}

#[cfg(test)]
mod tests;
