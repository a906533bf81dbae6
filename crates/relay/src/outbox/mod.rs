//! The effects outbox (SPEC §3, §4): the side effects of enforcement — hold the restricted
//! sender's queued mail, record the alert, post it to webhooks, mail the notification — run by
//! one named task after the SMTP command that caused them has been answered, instead of inside
//! it. What must hold at once stays with the caller: the restriction is put in this node's
//! cache and written to the store before the crossing RCPT is answered (`enforce::actions`),
//! so the very next command on any session is refused.
//!
//! Guarantees:
//! - **Order.** The effects of one [`Batch`] run one after another in the order planned
//!   ([`effect`]): hold, (store the restriction), alert, webhook, email. A batch waiting for a
//!   retry does not hold up the others; batches start in arrival order.
//! - **Dedup.** A batch whose key was seen in the last [`DEDUP_TTL`] is dropped (counted as
//!   `deduplicated`): the same restriction or alert raised by two sessions at once is told once.
//!   Across nodes the store decides (`insert_restriction_once`, `insert_alert_once`): an effect
//!   that finds its record already made stops its batch.
//! - **Retries.** An effect that fails for a transient reason (the store or the spool not
//!   answering) is retried after [`backoff`] (1 s doubling to a minute). A restriction write is
//!   retried until it succeeds or the node stops; any other effect is given up after
//!   [`MAX_ATTEMPTS`] with an error log and the `given_up` metric. Webhooks are handed to their
//!   own sender once: it has its own retry schedule, and retrying here would double it.
//! - **Bounds.** The channel holds [`CHANNEL`] batches and the task at most [`MAX_PENDING`]
//!   (running or waiting for a retry); when full it stops reading, so the channel fills. Then a
//!   batch that carries an unstored restriction waits for room (backpressure on the session —
//!   a restriction is never lost), and any other is dropped with a warning and the `dropped`
//!   metric. No task is ever spawned per effect.
//! - **Shutdown.** When the relay stops, what is queued is run once more without waiting for
//!   retry times; what still fails is logged and counted (`unfinished`). The restriction
//!   itself is in the store or, when the store was down all along, lost with this node's
//!   cache — with an error log naming it.

pub mod effect;
mod run;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

pub use effect::{Batch, Effect, Notices, Recorded, SystemMail, plan_action, plan_service_alert};
pub use run::RelayEffects;

use crate::metrics::Metrics;
use outguard_delivery::shutdown::Shutdown;

/// Batches waiting in the channel.
pub const CHANNEL: usize = 256;
/// Batches the task keeps (running or waiting for a retry) before it stops reading the channel.
pub const MAX_PENDING: usize = 1024;
/// Attempts of one effect before it is given up (a restriction write never is).
pub const MAX_ATTEMPTS: u32 = 8;
/// How long a batch key is remembered. Keys name their UTC day, so a day (plus the clock skew
/// between nodes) covers every repeat.
pub const DEDUP_TTL: Duration = Duration::from_secs(25 * 3600);
/// Keys remembered at most (oldest forgotten first).
pub const DEDUP_MAX: usize = 100_000;

/// Delay before attempt `attempt + 1` of an effect that failed `attempt` times (1-based):
/// 1 s, 2 s, 4 s, … at most 60 s.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64 << attempt.saturating_sub(1).min(6);
    Duration::from_secs(secs.min(60))
}

/// What running one effect came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Done: go on with the next effect of the batch.
    Next,
    /// Done, and the rest of the batch is not to run (another session or node raised it
    /// first, or the daily notification cap is reached).
    Stop(&'static str),
    /// Failed for a reason that may pass: try this effect again later.
    Retry(String),
}

/// Runs effects. The relay's is [`RelayEffects`]; tests use a recording fake.
pub trait Runner: Send + Sync + 'static {
    fn run<'a>(&'a self, effect: &'a Effect) -> Pin<Box<dyn Future<Output = Step> + Send + 'a>>;
}

/// Handle to the outbox task, kept in the relay.
pub struct Outbox {
    tx: mpsc::Sender<Batch>,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// Start the outbox task on the current runtime. It ends when `shutdown` stops (after one
    /// last round) or when every handle is dropped and its work is done.
    pub fn start(
        runner: Arc<dyn Runner>,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> (Outbox, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let task = Task {
            runner,
            metrics: metrics.clone(),
            heap: BinaryHeap::new(),
            seq: 0,
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
        };
        let handle = tokio::spawn(task.run(rx, shutdown));
        (Outbox { tx, metrics }, handle)
    }

    /// Queue a batch. Returns at once, except for a batch that carries an unstored restriction
    /// while the outbox is full: that one waits for room rather than be lost.
    pub async fn submit(&self, batch: Batch) {
        if batch.effects.is_empty() {
            return;
        }
        if batch.carries_restriction() {
            if let Err(mpsc::error::SendError(b)) = self.tx.send(batch).await {
                self.metrics.effect("batch", "dropped");
                tracing::error!(effects = ?b.effects, "outbox stopped: a restriction enforced only from this node's cache was not stored");
            }
            return;
        }
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b)) => {
                self.metrics.effect("batch", "dropped");
                let names: Vec<&str> = b.effects.iter().map(Effect::name).collect();
                tracing::warn!(key = ?b.key, effects = ?names, "effects outbox full or stopped; batch dropped");
            }
        }
    }
}

/// A batch in progress: the effect to run next and how often it failed.
struct Job {
    batch: Batch,
    next: usize,
    attempts: u32,
}

struct Due {
    at: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Task {
    runner: Arc<dyn Runner>,
    metrics: Arc<Metrics>,
    /// Jobs by due time, then arrival.
    heap: BinaryHeap<Reverse<Due>>,
    seq: u64,
    /// Batch keys seen, and until when they count.
    seen: HashMap<String, Instant>,
    seen_order: VecDeque<(Instant, String)>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Batch>, shutdown: Shutdown) {
        let mut open = true;
        loop {
            // Run everything due, one effect at a time, in due order.
            let now = Instant::now();
            while self.heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
                let Some(Reverse(d)) = self.heap.pop() else {
                    break;
                };
                self.advance(d.job, false).await;
            }
            if !open && self.heap.is_empty() {
                return;
            }
            let next_due = self.heap.peek().map(|Reverse(d)| d.at);
            let room = self.heap.len() < MAX_PENDING;
            tokio::select! {
                biased;
                _ = shutdown.stopped() => break,
                b = rx.recv(), if open && room => match b {
                    Some(b) => self.accept(b),
                    None => open = false,
                },
                _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
            }
        }
        // Stopping: take what is queued and run everything once, retry times or not.
        rx.close();
        while let Some(b) = rx.recv().await {
            self.accept(b);
        }
        while let Some(Reverse(d)) = self.heap.pop() {
            self.advance(d.job, true).await;
        }
    }

    /// Take a new batch unless its key was seen lately.
    fn accept(&mut self, batch: Batch) {
        let now = Instant::now();
        if let Some(key) = &batch.key {
            self.forget_expired(now);
            if self.seen.get(key).is_some_and(|until| *until > now) {
                self.metrics.effect("batch", "deduplicated");
                tracing::info!(%key, "same effects already queued or done; not running them twice");
                return;
            }
            self.seen.insert(key.clone(), now + DEDUP_TTL);
            self.seen_order.push_back((now + DEDUP_TTL, key.clone()));
        }
        self.push(
            now,
            Job {
                batch,
                next: 0,
                attempts: 0,
            },
        );
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some((until, key)) = self.seen_order.front() {
            if *until > now && self.seen_order.len() < DEDUP_MAX {
                break;
            }
            if self.seen.get(key) == Some(until) {
                self.seen.remove(key);
            }
            self.seen_order.pop_front();
        }
    }

    fn push(&mut self, at: Instant, job: Job) {
        self.seq += 1;
        self.heap.push(Reverse(Due {
            at,
            seq: self.seq,
            job,
        }));
    }

    /// Run the job's effects from where it stands until it ends or one must be retried.
    /// `last`: the node is stopping; a failure is not scheduled again.
    async fn advance(&mut self, mut job: Job, last: bool) {
        while let Some(effect) = job.batch.effects.get(job.next) {
            let name = effect.name();
            match self.runner.run(effect).await {
                Step::Next => {
                    self.metrics.effect(name, "done");
                    job.next += 1;
                    job.attempts = 0;
                }
                Step::Stop(why) => {
                    self.metrics.effect(name, "done");
                    let rest: Vec<&str> = job.batch.effects[job.next + 1..]
                        .iter()
                        .map(Effect::name)
                        .collect();
                    if !rest.is_empty() {
                        tracing::info!(effect = name, skipped = ?rest, "{why}");
                    }
                    return;
                }
                Step::Retry(error) => {
                    job.attempts += 1;
                    let keep = matches!(effect, Effect::Restrict { .. });
                    if last {
                        self.metrics.effect(name, "unfinished");
                        tracing::error!(effect = name, %error, batch = ?job.batch.effects, "stopping with an effect not done");
                        return;
                    }
                    if !keep && job.attempts >= MAX_ATTEMPTS {
                        self.metrics.effect(name, "given_up");
                        tracing::error!(effect = name, %error, attempts = job.attempts, "effect given up");
                        return;
                    }
                    let delay = backoff(job.attempts);
                    self.metrics.effect(name, "retried");
                    tracing::warn!(effect = name, %error, attempts = job.attempts, retry_in = ?delay, "effect failed; will retry");
                    self.push(Instant::now() + delay, job);
                    return;
                }
            }
        }
    }
}
