//! The queue manager: the in-memory view of the spool, a timer set ordered by next attempt, and
//! the tasks that run attempts. At start it rebuilds itself from `spool.load_all()` (SPEC §2.6:
//! delivery resumes after a crash); `enqueue` adds a freshly accepted message.
//!
//! Limits (STYLE rule 6): at most `delivery.max_connections` messages are in an attempt at once
//! (the scheduler waits for a slot, which is the queue's back-pressure), each connection takes a
//! global permit and a permit of its destination site (`max_connections_per_destination`).
//!
//! After a round: delivered and permanently failed recipients are final (a DSN for the failed
//! ones, from `high-risk`); if recipients remain, the message is retried on the schedule until
//! `max_age`, then the rest fail with `4.4.7` and get a DSN. Held and quarantined messages are
//! never scheduled. Events (trace, state changes, DSNs created) go out on a bounded channel in
//! order; the caller mirrors them into the records store.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use outguard_store::spool::{Envelope, RcptState, RcptStatus, Spool, SpoolError, State};
use outguard_types::config::{DeliveryConfig, RouteConfig, ShapingRule};
use outguard_types::model::{EventKind, MessageState, TraceEvent};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::attempt::Round;
use super::bounce;
use super::dkim::DkimSigners;
use super::mta_sts::cache::Sts;
use super::mx::MxResolver;
use super::pools::PoolSet;
use super::reuse::IdlePool;
use super::schedule::{self, Clock};
use super::shaping::Shaper;

/// What the queue needs from the configuration.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Reporting MTA of DSNs.
    pub hostname: String,
    pub delivery: DeliveryConfig,
    pub routes: Vec<RouteConfig>,
    /// `[[shaping]]` rules, first match wins (`delivery.adaptive` is in `delivery`).
    pub shaping: Vec<ShapingRule>,
    /// `[srs]`: a DSN about forwarded mail goes to the original sender, not to our SRS address.
    pub srs: Option<outguard_proto::srs::Srs>,
}

/// Everything the queue reports, in order.
#[derive(Debug, Clone)]
pub enum QueueEvent {
    Trace(TraceEvent),
    State {
        id: String,
        state: MessageState,
        pool: Option<String>,
    },
    /// The queue spooled a message of its own (a DSN); `about` is the original message.
    Created {
        envelope: Envelope,
        size: u64,
        about: String,
    },
}

pub struct QueueDeps {
    pub spool: Spool,
    pub config: QueueConfig,
    pub resolver: MxResolver,
    pub pools: Arc<PoolSet>,
    pub dkim: Arc<DkimSigners>,
    pub events: mpsc::Sender<QueueEvent>,
    /// STARTTLS client config; `None` never starts TLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// STARTTLS client config that verifies the certificate (`verify` policy); `None`: mail
    /// under `verify` is deferred.
    pub verified_tls: Option<Arc<rustls::ClientConfig>>,
    /// What `verify` checks certificates with; MTA-STS fetches its policies with it and judges
    /// certificates with it in `testing` mode. `None`: no trust roots.
    pub tls_verifier: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    /// The process's clock: retry times, expiry and trace stamps.
    pub clock: Clock,
}

struct Entry {
    env: Arc<Envelope>,
    state: State,
    in_flight: bool,
}

/// A queued message as `queue list` and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueItem {
    pub id: String,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub pool: String,
    pub state: MessageState,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub received_at: i64,
    pub last_reply: Option<String>,
}

pub struct Inner {
    pub(super) deps: QueueDeps,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) clock: Clock,
    entries: Mutex<HashMap<String, Entry>>,
    timers: Mutex<BTreeSet<(i64, String)>>,
    wake: Notify,
    workers: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    sites: Mutex<HashMap<String, Arc<Semaphore>>>,
    stop: CancellationToken,
    /// Serialises state-file writes so an older state can never overwrite a newer one.
    persist_lock: Mutex<()>,
    /// Idle connections to next hops, for the next message to the same place.
    pub(super) idle: Arc<IdlePool>,
    attempts: DeliveryAttempts,
    /// Per (source IP, destination) rates and limits (issue 22).
    pub(super) shaper: Shaper,
    /// MTA-STS discovery and cache (`None`: `[delivery.mta_sts] enabled = false`).
    pub(super) sts: Option<Sts>,
    /// `deps.events`, in order however far the store writer lags.
    events: super::events::OrderedSender<QueueEvent>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn state_of(st: &State) -> MessageState {
    if st.quarantined {
        MessageState::Quarantined
    } else if st.held {
        MessageState::Held
    } else if st.attempts > 0 {
        MessageState::Deferred
    } else {
        MessageState::Queued
    }
}

impl Inner {
    pub(super) fn trace(&self, id: &str, kind: EventKind, detail: String, data: serde_json::Value) {
        let ev = TraceEvent {
            message_id: id.to_string(),
            at: self.clock.now_ms(),
            kind,
            detail,
            data,
        };
        self.emit(QueueEvent::Trace(ev));
    }

    fn emit(&self, ev: QueueEvent) {
        self.events.send(ev);
    }

    fn set_state(&self, id: &str, state: MessageState, pool: &str) {
        self.emit(QueueEvent::State {
            id: id.to_string(),
            state,
            pool: Some(pool.to_string()),
        });
    }

    /// A global connection permit and one for the destination site.
    pub(super) async fn permits(
        &self,
        site: &str,
    ) -> (Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>) {
        let per_site = self
            .deps
            .config
            .delivery
            .max_connections_per_destination
            .max(1);
        let sem = lock(&self.sites)
            .entry(site.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(per_site)))
            .clone();
        let site_permit = sem.acquire_owned().await.ok();
        let global = self.connections.clone().acquire_owned().await.ok();
        (global, site_permit)
    }

    fn schedule(&self, id: &str, at: i64) {
        lock(&self.timers).insert((at, id.to_string()));
        self.wake.notify_one();
    }
}

/// Handle to the running queue; cheap to clone.
#[derive(Clone)]
pub struct QueueHandle {
    inner: Arc<Inner>,
}

pub struct Queue;

impl Queue {
    /// Rebuild from the spool and start scheduling. The queue stops when `stop` completes or
    /// `QueueHandle::stop` is called; attempts in progress finish on their own.
    pub async fn start(
        deps: QueueDeps,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<QueueHandle, SpoolError> {
        let max = deps.config.delivery.max_connections.max(1);
        let per_site = deps.config.delivery.max_connections_per_destination.max(1);
        let tls = deps.tls.clone();
        let clock = deps.clock;
        let events = super::events::OrderedSender::new(deps.events.clone());
        let shaper = Shaper::new(
            deps.config.shaping.clone(),
            deps.config.delivery.adaptive.clone(),
        );
        let sts_cfg = &deps.config.delivery.mta_sts;
        let sts = sts_cfg.enabled.then(|| {
            Sts::new(
                deps.resolver.clone(),
                deps.tls_verifier.clone(),
                sts_cfg.https_port,
            )
        });
        let inner = Arc::new(Inner {
            shaper,
            sts,
            events,
            deps,
            tls,
            clock,
            entries: Mutex::new(HashMap::new()),
            timers: Mutex::new(BTreeSet::new()),
            wake: Notify::new(),
            workers: Arc::new(Semaphore::new(max)),
            connections: Arc::new(Semaphore::new(max)),
            sites: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
            persist_lock: Mutex::new(()),
            idle: Arc::new(IdlePool::new(per_site)),
            attempts: Default::default(),
        });
        let spool = inner.deps.spool.clone();
        let all = tokio::task::spawn_blocking(move || spool.load_all())
            .await
            .map_err(|e| SpoolError::Task(e.to_string()))??;
        tracing::info!(messages = all.len(), "queue rebuilt from the spool");
        for (env, state) in all {
            insert(&inner, env, state);
        }
        let token = inner.stop.clone();
        tokio::spawn(async move {
            stop.await;
            token.cancel();
        });
        tokio::spawn(scheduler(inner.clone()));
        tokio::spawn(inner.idle.clone().run(inner.stop.clone()));
        Ok(QueueHandle { inner })
    }
}

fn insert(inner: &Arc<Inner>, env: Envelope, state: State) {
    let id = env.id.clone();
    let due = state.next_attempt_at;
    let runnable = !state.held && !state.quarantined;
    {
        let mut entries = lock(&inner.entries);
        if entries.contains_key(&id) {
            return; // already queued (e.g. enqueue of a message the start-up scan found)
        }
        let entry = Entry {
            env: Arc::new(env),
            state,
            in_flight: false,
        };
        entries.insert(id.clone(), entry);
    }
    if runnable {
        inner.schedule(&id, due);
    }
}

async fn scheduler(inner: Arc<Inner>) {
    loop {
        let next = lock(&inner.timers).first().cloned();
        let now = inner.clock.now_ms();
        match next {
            Some((due, id)) if due <= now => {
                lock(&inner.timers).remove(&(due, id.clone()));
                let permit = tokio::select! {
                    p = inner.workers.clone().acquire_owned() => p,
                    _ = inner.stop.cancelled() => return,
                };
                let Ok(permit) = permit else { return };
                if claim(&inner, &id, now) {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        run_message(&inner, &id).await;
                        drop(permit);
                    });
                }
            }
            Some((due, _)) => {
                let until = inner.clock.instant_at(due);
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = inner.wake.notified() => {}
                    _ = inner.stop.cancelled() => return,
                }
            }
            None => {
                tokio::select! {
                    _ = inner.wake.notified() => {}
                    _ = inner.stop.cancelled() => return,
                }
            }
        }
    }
}

/// Mark `id` in flight if it is due, runnable and not already running.
fn claim(inner: &Inner, id: &str, now: i64) -> bool {
    let mut entries = lock(&inner.entries);
    let Some(e) = entries.get_mut(id) else {
        return false;
    };
    if e.in_flight || e.state.held || e.state.quarantined || e.state.next_attempt_at > now {
        return false;
    }
    e.in_flight = true;
    true
}

async fn run_message(inner: &Arc<Inner>, id: &str) {
    let Some((env, state)) = lock(&inner.entries)
        .get(id)
        .map(|e| (e.env.clone(), e.state.clone()))
    else {
        return;
    };
    let spool = inner.deps.spool.clone();
    let sid = id.to_string();
    let read = move || Ok::<_, SpoolError>((spool.read_body(&sid)?, spool.read_done(&sid)?));
    let (body, done) = match tokio::task::spawn_blocking(read).await {
        Ok(Ok(read)) => read,
        Ok(Err(SpoolError::NotFound(_))) => {
            // Deleted from the spool meanwhile: nothing is left to deliver.
            lock(&inner.entries).remove(id);
            return;
        }
        Ok(Err(e)) => {
            // A read that failed (no file descriptor left, an I/O error) may work later: the
            // message stays queued on the retry schedule, never dropped from memory while its
            // file is still in the spool.
            tracing::error!(%id, error = %e, "cannot read spooled message; retrying later");
            retry_after_read_error(inner, &env, state, format!("451 4.3.0 {e}")).await;
            return;
        }
        Err(e) => {
            tracing::error!(%id, error = %e, "spool read task failed; retrying later");
            retry_after_read_error(inner, &env, state, format!("451 4.3.0 {e}")).await;
            return;
        }
    };
    // A recipient recorded as accepted is never tried again, whatever the state says.
    let mut state = state;
    let known = state.mark_delivered(&env, &done);
    if !known.is_empty() {
        inner.trace(
            id,
            EventKind::Delivered,
            format!(
                "delivered to {} (recorded at the remote's reply)",
                known.join(", ")
            ),
            json!({"rcpts": known}),
        );
    }
    if state.pending(&env).is_empty() {
        let round = Round {
            counted: true,
            ..Round::default()
        };
        finish(inner, &env, state, round, &body).await;
        return;
    }
    let round = super::attempt::run(inner, &env, &state, &body).await;
    inner
        .attempts
        .count(&round.results, queued_for(&env, inner.clock.now_ms()));
    finish(inner, &env, state, round, &body).await;
}

/// The round could not start (the spool read failed): out of flight, and on the retry schedule
/// like a deferral, so the message is tried again and expires at `max_age` as any other.
async fn retry_after_read_error(inner: &Arc<Inner>, env: &Envelope, mut state: State, why: String) {
    let now = inner.clock.now_ms();
    if schedule::expired(now, env.received_at, inner.deps.config.delivery.max_age) {
        // Unreadable for its whole life: no DSN can be built from it. It stays in the spool for
        // the operator (`queue` shows it after a restart); retrying it at once would spin.
        tracing::error!(id = %env.id, "spooled message unreadable until max_age; left in the spool");
        lock(&inner.entries).remove(&env.id);
        return;
    }
    if let Some(e) = lock(&inner.entries).get_mut(&env.id) {
        e.in_flight = false;
    }
    state.attempts = state.attempts.saturating_add(1);
    for rcpt in state
        .pending(env)
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    {
        let st = state.rcpts.entry(rcpt).or_insert(RcptState {
            status: RcptStatus::Pending,
            reply: None,
            remote: None,
        });
        st.reply = Some(why.clone());
    }
    defer(inner, env, state, now, None).await;
}

/// How long `env` has been in the queue at `now`: the latency histogram's and the mail log's
/// `delay=` one measure.
fn queued_for(env: &Envelope, now: i64) -> std::time::Duration {
    let ms = now.saturating_sub(env.received_at).max(0);
    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Fold a round's outcomes into `state` (expiring what is left once `max_age` has passed).
/// Returns the recipients delivered and failed in this round. A round in which traffic
/// shaping held back or a receiver throttled every domain is not counted as an attempt: the
/// retry schedule does not grow because we were asked to slow down.
fn apply(
    state: &mut State,
    env: &Envelope,
    results: Vec<(String, RcptState)>,
    counted: bool,
    now: i64,
    max_age: std::time::Duration,
) -> (Vec<String>, Vec<(String, RcptState)>) {
    state.attempts = state.attempts.saturating_add(u32::from(counted));
    let (mut delivered, mut failed) = (Vec::new(), Vec::new());
    for (rcpt, st) in results {
        match st.status {
            RcptStatus::Failed => failed.push((rcpt.clone(), st.clone())),
            RcptStatus::Delivered => delivered.push(rcpt.clone()),
            RcptStatus::Pending => {}
        }
        state.rcpts.insert(rcpt, st);
    }
    if schedule::expired(now, env.received_at, max_age) {
        let pending: Vec<String> = state.pending(env).into_iter().map(str::to_string).collect();
        for rcpt in pending {
            let prev = state.rcpts.get(&rcpt);
            let last = prev.and_then(|s| s.reply.clone()).unwrap_or_default();
            let st = RcptState {
                status: RcptStatus::Failed,
                reply: Some(format!(
                    "451 4.4.7 delivery time expired; last reply: {last}"
                )),
                remote: prev.and_then(|s| s.remote.clone()),
            };
            failed.push((rcpt.clone(), st.clone()));
            state.rcpts.insert(rcpt, st);
        }
    }
    (delivered, failed)
}

/// After a round: trace, DSN for new failures, then remove the message or retry it later.
async fn finish(inner: &Arc<Inner>, env: &Envelope, mut state: State, round: Round, body: &[u8]) {
    let now = inner.clock.now_ms();
    let max_age = inner.deps.config.delivery.max_age;
    let counted = round.counted;
    let (delivered, failed) = apply(&mut state, env, round.results, counted, now, max_age);
    if !delivered.is_empty() {
        // Postfix's `delay=`: seconds from entering the queue to the remote's 2xx.
        let delay = queued_for(env, now).as_secs_f64();
        let detail = format!("delivered to {} delay={delay:.2}", delivered.join(", "));
        inner.trace(
            &env.id,
            EventKind::Delivered,
            detail,
            json!({"rcpts": delivered, "delay": delay}),
        );
    }
    if !failed.is_empty() {
        let detail = failed
            .iter()
            .map(|(r, s)| format!("{r}: {}", s.reply.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ");
        let rcpts: Vec<&String> = failed.iter().map(|(r, _)| r).collect();
        // Each recipient's RFC 3463 status: 5.1.x suppresses it for the tenant (issue 25).
        let statuses: serde_json::Map<String, serde_json::Value> = failed
            .iter()
            .map(|(r, s)| {
                let st = s.reply.as_deref().map(crate::bounce::status_of);
                (r.clone(), json!(st.unwrap_or_else(|| "5.0.0".into())))
            })
            .collect();
        inner.trace(
            &env.id,
            EventKind::Bounced,
            detail,
            json!({ "rcpts": rcpts, "rcpt_status": statuses }),
        );
    }
    // New failures plus those whose DSN an earlier round could not spool.
    let mut owed: Vec<(String, RcptState)> = std::mem::take(&mut state.dsn_owed)
        .into_iter()
        .filter(|r| !failed.iter().any(|(f, _)| f == r))
        .filter_map(|r| state.rcpts.get(&r).cloned().map(|st| (r, st)))
        .collect();
    owed.extend(failed);
    if !owed.is_empty() && !send_dsn(inner, env, &owed, body, now).await {
        state.dsn_owed = owed.into_iter().map(|(r, _)| r).collect();
    }
    {
        let mut entries = lock(&inner.entries);
        let Some(e) = entries.get_mut(&env.id) else {
            return;
        }; // deleted meanwhile
        // A hold or quarantine decided while the attempt ran wins over our copy.
        state.held = e.state.held;
        state.quarantined = e.state.quarantined;
        e.in_flight = false;
    }
    if state.pending(env).is_empty() && state.dsn_owed.is_empty() {
        complete(inner, env, &state).await;
    } else {
        defer(inner, env, state, now, round.shaped_until).await;
    }
}

/// Every recipient is final: drop the message from the spool.
async fn complete(inner: &Arc<Inner>, env: &Envelope, state: &State) {
    lock(&inner.entries).remove(&env.id);
    let spool = inner.deps.spool.clone();
    let id = env.id.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || spool.remove(&id)).await {
        tracing::error!(id = %env.id, error = %e, "cannot remove finished message from the spool");
    }
    let any_delivered = state
        .rcpts
        .values()
        .any(|s| s.status == RcptStatus::Delivered);
    let final_state = if any_delivered {
        MessageState::Delivered
    } else {
        MessageState::Bounced
    };
    inner.set_state(&env.id, final_state, &env.pool);
}

/// Recipients remain: persist the state and schedule the next attempt — on the retry
/// schedule, or sooner when traffic shaping said when a held-back domain may go.
async fn defer(
    inner: &Arc<Inner>,
    env: &Envelope,
    mut state: State,
    now: i64,
    shaped_until: Option<i64>,
) {
    let cfg = &inner.deps.config.delivery;
    let scheduled = schedule::next_attempt_at(
        now,
        state.attempts,
        &cfg.retry_schedule,
        env.received_at,
        cfg.max_age,
    );
    state.next_attempt_at = shaped_until.map_or(scheduled, |t| scheduled.min(t.max(now)));
    let last = state
        .pending(env)
        .first()
        .and_then(|r| state.rcpts.get(*r))
        .and_then(|s| s.reply.clone())
        .unwrap_or_default();
    inner.trace(
        &env.id,
        EventKind::Deferred,
        format!("attempt {} deferred: {last}", state.attempts),
        json!({"attempts": state.attempts, "next_attempt_at": state.next_attempt_at, "reply": last}),
    );
    // A hold or quarantine decided meanwhile wins; memory first, then the file from memory.
    if let Some(e) = lock(&inner.entries).get_mut(&env.id) {
        state.held = e.state.held;
        state.quarantined = e.state.quarantined;
        e.state = state.clone();
    }
    persist(inner, &env.id).await;
    let runnable = !state.held && !state.quarantined;
    let due = state.next_attempt_at;
    // The recorded state follows memory: a hold that landed during the attempt stays `held` in
    // the store (and so in `queue list --state held`), not overwritten by `deferred`.
    inner.set_state(&env.id, state_of(&state), &env.pool);
    if runnable {
        inner.schedule(&env.id, due);
    }
}

/// Write the message's current in-memory state to its spool sidecar. The state is read under the
/// persist lock at write time, so concurrent writers (a hold racing a deferral) always leave the
/// newest state on disk.
async fn persist(inner: &Arc<Inner>, id: &str) {
    let (inner2, id) = (inner.clone(), id.to_string());
    let res = tokio::task::spawn_blocking(move || {
        let _guard = lock(&inner2.persist_lock);
        let st = lock(&inner2.entries).get(&id).map(|e| e.state.clone());
        match st {
            Some(st) => inner2.deps.spool.update_state(&id, &st),
            None => Ok(()), // removed meanwhile
        }
    })
    .await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot persist delivery state"),
        Err(e) => tracing::error!(error = %e, "state task failed"),
    }
}

async fn send_dsn(
    inner: &Arc<Inner>,
    env: &Envelope,
    failed: &[(String, RcptState)],
    body: &[u8],
    now: i64,
) -> bool {
    // None: no DSN is due (a null sender, or NOTIFY=NEVER).
    let Some((mut dsn, dsn_body)) =
        bounce::make_dsn(&inner.deps.config.hostname, env, failed, body, now)
    else {
        return true;
    };
    // Our own SRS sender (forwarded mail): reverse it here rather than mail ourselves through DNS.
    if let Some(srs) = &inner.deps.config.srs
        && srs.is_ours(&env.mail_from)
        && let Ok(original) = srs.reverse(&env.mail_from, now.div_euclid(1000))
    {
        dsn.rcpts = vec![original];
    }
    let to = dsn.rcpts.join(", ");
    let spool = inner.deps.spool.clone();
    let (d, b) = (dsn.clone(), dsn_body.clone());
    match tokio::task::spawn_blocking(move || spool.accept_blocking(&d, &b)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(id = %env.id, error = %e, "cannot spool DSN; keeping the message until it can");
            return false;
        }
        Err(_) => return false,
    }
    inner.emit(QueueEvent::Created {
        envelope: dsn.clone(),
        size: dsn_body.len() as u64,
        about: env.id.clone(),
    });
    inner.trace(
        &env.id,
        EventKind::Dsn,
        format!("DSN {} to {to}", dsn.id),
        json!({"dsn_id": dsn.id, "to": to}),
    );
    let id = dsn.id.clone();
    let pool = dsn.pool.clone();
    insert(inner, dsn, State::default());
    inner.set_state(&id, MessageState::Queued, &pool);
    true
}

impl QueueHandle {
    /// Delivery attempts by result since start (`/metrics`).
    pub fn delivery_attempts(&self) -> &DeliveryAttempts {
        &self.inner.attempts
    }

    /// Take a message the spool holds into the queue, by id (reads its envelope and state).
    pub async fn enqueue(&self, id: &str) {
        let spool = self.inner.deps.spool.clone();
        let sid = id.to_string();
        match tokio::task::spawn_blocking(move || spool.load_one(&sid)).await {
            Ok(Ok((env, state))) => insert(&self.inner, env, state),
            Ok(Err(e)) => tracing::error!(%id, error = %e, "cannot enqueue"),
            Err(e) => tracing::error!(%id, error = %e, "enqueue task failed"),
        }
    }

    /// Same as `enqueue` when the caller still has the envelope (saves a read).
    pub fn enqueue_envelope(&self, env: Envelope) {
        let state = State::initial(&env);
        insert(&self.inner, env, state);
    }

    pub async fn stop(&self) {
        self.inner.stop.cancel();
    }

    pub fn list(&self) -> Vec<QueueItem> {
        let entries = lock(&self.inner.entries);
        let mut out: Vec<QueueItem> = entries
            .values()
            .map(|e| QueueItem {
                id: e.env.id.clone(),
                mail_from: e.env.mail_from.clone(),
                rcpts: e.env.rcpts.clone(),
                pool: e.env.pool.clone(),
                state: state_of(&e.state),
                attempts: e.state.attempts,
                next_attempt_at: e.state.next_attempt_at,
                received_at: e.env.received_at,
                last_reply: e
                    .state
                    .rcpts
                    .values()
                    .filter_map(|s| s.reply.clone())
                    .next_back(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Change a message's state durably; `f` returns the new trace kind and whether to run now.
    async fn change(
        &self,
        id: &str,
        f: impl FnOnce(&mut State) -> bool,
    ) -> Result<State, SpoolError> {
        let (state, run_now, pool) = {
            let mut entries = lock(&self.inner.entries);
            let e = entries
                .get_mut(id)
                .ok_or_else(|| SpoolError::NotFound(id.to_string()))?;
            let run_now = f(&mut e.state);
            (e.state.clone(), run_now, e.env.pool.clone())
        };
        persist(&self.inner, id).await;
        if run_now {
            self.inner.schedule(id, state.next_attempt_at);
        }
        self.inner.set_state(id, state_of(&state), &pool);
        Ok(state)
    }

    pub async fn hold(&self, id: &str) -> Result<(), SpoolError> {
        self.change(id, |s| {
            s.held = true;
            false
        })
        .await?;
        self.inner
            .trace(id, EventKind::Held, "held".into(), json!({}));
        Ok(())
    }

    /// Release a held or quarantined message for delivery now.
    pub async fn release(&self, id: &str) -> Result<(), SpoolError> {
        self.change(id, |s| {
            s.held = false;
            s.quarantined = false;
            s.next_attempt_at = 0;
            true
        })
        .await?;
        self.inner
            .trace(id, EventKind::Released, "released".into(), json!({}));
        Ok(())
    }

    /// Attempt a deferred message now (a held one stays held).
    pub async fn retry_now(&self, id: &str) -> Result<(), SpoolError> {
        self.change(id, |s| {
            s.next_attempt_at = 0;
            !s.held && !s.quarantined
        })
        .await
        .map(|_| ())
    }

    pub async fn delete(&self, id: &str) -> Result<(), SpoolError> {
        let pool = lock(&self.inner.entries)
            .remove(id)
            .map(|e| e.env.pool.clone());
        let spool = self.inner.deps.spool.clone();
        let sid = id.to_string();
        tokio::task::spawn_blocking(move || spool.remove(&sid))
            .await
            .map_err(|e| SpoolError::Task(e.to_string()))??;
        let Some(pool) = pool else {
            return Err(SpoolError::NotFound(id.to_string()));
        };
        self.inner.set_state(id, MessageState::Deleted, &pool);
        self.inner.trace(
            id,
            EventKind::Deleted,
            "deleted from the queue".into(),
            json!({}),
        );
        Ok(())
    }

    /// Hold every queued message of one submitter (SPEC §3: a restricted account's mail stays).
    pub async fn hold_matching(&self, pred: impl Fn(&Envelope) -> bool) -> Vec<String> {
        let ids: Vec<String> = lock(&self.inner.entries)
            .values()
            .filter(|e| pred(&e.env))
            .map(|e| e.env.id.clone())
            .collect();
        for id in &ids {
            let _ = self.hold(id).await;
        }
        ids
    }

    pub fn pools(&self) -> &PoolSet {
        &self.inner.deps.pools
    }

    /// Traffic shaping: the pairs slowed or suspended now and the per-destination counters.
    pub fn shaping(&self) -> &Shaper {
        &self.inner.shaper
    }

    /// The queue's clock, Unix ms (what shaping's times are measured in).
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.inner.entries).len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
pub use super::glue::start;

/// Upper bounds (seconds) of the delivery-latency histogram: from a next-hop answering at once
/// to a message that needed the retry schedule for a day.
pub const DELIVERY_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 43_200.0, 86_400.0,
];

/// Delivery attempts per recipient by result, counted by the queue after every round, and how
/// long each delivered recipient waited from entering the queue to the remote's 2xx.
#[derive(Debug, Default)]
pub struct DeliveryAttempts {
    delivered: AtomicU64,
    deferred: AtomicU64,
    bounced: AtomicU64,
    latency_buckets: [AtomicU64; DELIVERY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ms: AtomicU64,
}

impl DeliveryAttempts {
    /// Count one round's per-recipient outcomes (pending after a try = deferred, failed =
    /// bounced); each delivered recipient waited `waited` since the message was queued.
    pub fn count(&self, results: &[(String, RcptState)], waited: std::time::Duration) {
        for (_, st) in results {
            let c = match st.status {
                RcptStatus::Delivered => {
                    self.observe_latency(waited);
                    &self.delivered
                }
                RcptStatus::Pending => &self.deferred,
                RcptStatus::Failed => &self.bounced,
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn observe_latency(&self, waited: std::time::Duration) {
        let secs = waited.as_secs_f64();
        for (i, le) in DELIVERY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        self.latency_sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The latency histogram: cumulative count per bucket of [`DELIVERY_BUCKETS`], the total
    /// count and the sum in seconds.
    pub fn latency(&self) -> (Vec<u64>, u64, f64) {
        let buckets = self
            .latency_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let sum = self.latency_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        (buckets, self.latency_count.load(Ordering::Relaxed), sum)
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn deferred(&self) -> u64 {
        self.deferred.load(Ordering::Relaxed)
    }

    pub fn bounced(&self) -> u64 {
        self.bounced.load(Ordering::Relaxed)
    }
}
