//! The outbox on paused time: order within a batch, dedup of repeated batches, retries on the
//! backoff schedule (and a restriction write never given up), stop, bounds and the last round
//! at shutdown. The runner is a fake that records what ran when and answers from a script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outguard_policy::restriction::LimitKind;
use outguard_policy::{Measure, Restriction, RestrictionReason, Subject};
use outguard_types::policy::ThresholdAction;
use outguard_types::time::Clock;
use tokio::time::Instant;

use super::*;

/// Runs effects by label: `HoldQueued { subject: Account(label) }`, or `Restrict` of an
/// account `label`. Records (label, ms since start); answers from the label's script, `Next`
/// once the script is empty. A label starting with `block` waits for `gate` first.
struct Fake {
    ran: Mutex<Vec<(String, u64)>>,
    script: Mutex<HashMap<String, Vec<Step>>>,
    gate: tokio::sync::Semaphore,
    start: Mutex<Option<Instant>>,
}

impl Default for Fake {
    fn default() -> Fake {
        Fake {
            ran: Mutex::default(),
            script: Mutex::default(),
            gate: tokio::sync::Semaphore::new(0),
            start: Mutex::default(),
        }
    }
}

fn label(e: &Effect) -> String {
    match e {
        Effect::HoldQueued { subject }
        | Effect::Restrict {
            restriction: Restriction { subject, .. },
        } => subject.id().to_string(),
        other => other.name().to_string(),
    }
}

impl Runner for Fake {
    fn run<'a>(&'a self, effect: &'a Effect) -> Pin<Box<dyn Future<Output = Step> + Send + 'a>> {
        Box::pin(async move {
            let l = label(effect);
            if l.starts_with("block") {
                let _ = self.gate.acquire().await.map(|p| p.forget());
            }
            let start = *self.start.lock().unwrap().get_or_insert_with(Instant::now);
            let at = u64::try_from(start.elapsed().as_millis()).unwrap();
            self.ran.lock().unwrap().push((l.clone(), at));
            let mut s = self.script.lock().unwrap();
            match s.get_mut(&l) {
                Some(v) if !v.is_empty() => v.remove(0),
                _ => Step::Next,
            }
        })
    }
}

impl Fake {
    fn script(&self, label: &str, steps: Vec<Step>) {
        self.script.lock().unwrap().insert(label.into(), steps);
    }
    fn ran(&self) -> Vec<(String, u64)> {
        self.ran.lock().unwrap().clone()
    }
    fn labels(&self) -> Vec<String> {
        self.ran().into_iter().map(|(l, _)| l).collect()
    }
}

fn hold(label: &str) -> Effect {
    Effect::HoldQueued {
        subject: Subject::Account(label.into()),
    }
}

fn restrict(label: &str) -> Effect {
    let reason = RestrictionReason::new(LimitKind::ExternalPerHour, vec![Measure::new("x", 1, 1)]);
    let restriction = Restriction::for_action(
        ThresholdAction::BlockUser,
        Subject::Account(label.into()),
        "a",
        reason,
        Clock::new().now_ms(),
    )
    .unwrap();
    Effect::Restrict { restriction }
}

fn batch(key: Option<&str>, effects: Vec<Effect>) -> Batch {
    Batch {
        key: key.map(str::to_string),
        effects,
    }
}

fn start(fake: &Arc<Fake>) -> (Outbox, tokio::task::JoinHandle<()>, Arc<Metrics>, Shutdown) {
    let metrics = Arc::new(Metrics::new());
    let shutdown = Shutdown::new();
    let (outbox, task) = Outbox::start(fake.clone(), metrics.clone(), shutdown.clone());
    (outbox, task, metrics, shutdown)
}

/// Let the outbox task run what is due now (paused time: no clock moves).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn effects_of_a_batch_run_in_order_and_batches_in_arrival_order() {
    let fake = Arc::new(Fake::default());
    let (outbox, _task, metrics, _sd) = start(&fake);
    outbox
        .submit(batch(Some("k1"), vec![hold("a1"), hold("a2"), hold("a3")]))
        .await;
    outbox
        .submit(batch(Some("k2"), vec![hold("b1"), hold("b2")]))
        .await;
    settle().await;
    assert_eq!(fake.labels(), ["a1", "a2", "a3", "b1", "b2"]);
    assert_eq!(metrics.effect_count("hold_queued", "done"), 5);
}

#[tokio::test(start_paused = true)]
async fn the_same_batch_raised_twice_runs_once() {
    let fake = Arc::new(Fake::default());
    let (outbox, _task, metrics, _sd) = start(&fake);
    let raised = |s| batch(Some("user_restricted|a/account:bob|x|1"), vec![hold(s)]);
    // Two sessions crossing the same limit at once.
    tokio::join!(outbox.submit(raised("one")), outbox.submit(raised("two")));
    settle().await;
    assert_eq!(fake.ran().len(), 1, "{:?}", fake.ran());
    assert_eq!(metrics.effect_count("batch", "deduplicated"), 1);
    // Later the same day still once; a batch without a key (holding) is never deduplicated.
    tokio::time::advance(Duration::from_secs(3600)).await;
    outbox.submit(raised("three")).await;
    outbox.submit(batch(None, vec![hold("h")])).await;
    outbox.submit(batch(None, vec![hold("h")])).await;
    settle().await;
    assert_eq!(fake.labels().len(), 3, "{:?}", fake.ran());
    assert_eq!(metrics.effect_count("batch", "deduplicated"), 2);
    // Once the key is forgotten (it names its day: the next day is another key anyway).
    tokio::time::advance(DEDUP_TTL).await;
    outbox.submit(raised("four")).await;
    settle().await;
    assert_eq!(fake.labels().last().map(String::as_str), Some("four"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_effect_is_retried_on_the_backoff_schedule_without_holding_up_others() {
    let fake = Arc::new(Fake::default());
    let (outbox, _task, metrics, _sd) = start(&fake);
    let down = || Step::Retry("store down".into());
    fake.script("alert", vec![down(), down(), down()]);
    fake.script("other", vec![]);
    outbox
        .submit(batch(
            Some("k"),
            vec![hold("hold"), hold("alert"), hold("webhook"), hold("notify")],
        ))
        .await;
    settle().await;
    // Another batch while the first waits for its retry: it is not held up.
    outbox.submit(batch(None, vec![hold("other")])).await;
    settle().await;
    assert_eq!(fake.labels(), ["hold", "alert", "other"]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let ran = fake.ran();
    let alert_times: Vec<u64> = ran
        .iter()
        .filter(|(l, _)| l == "alert")
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(alert_times, [0, 1000, 3000, 7000], "1 s, 2 s, 4 s apart");
    let order: Vec<&str> = ran.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        order,
        [
            "hold", "alert", "other", "alert", "alert", "alert", "webhook", "notify"
        ],
        "the hold is not repeated; what follows the retried effect runs after it"
    );
    assert_eq!(metrics.effect_count("hold_queued", "retried"), 3);
    assert_eq!(metrics.effect_count("hold_queued", "given_up"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_effect_is_given_up_after_max_attempts_but_a_restriction_write_never() {
    let fake = Arc::new(Fake::default());
    let (outbox, _task, metrics, _sd) = start(&fake);
    let down = || Step::Retry("store down".into());
    fake.script("mail", (0..100).map(|_| down()).collect());
    fake.script("bob@a.example", (0..20).map(|_| down()).collect());
    outbox
        .submit(batch(Some("m"), vec![hold("mail"), hold("after-mail")]))
        .await;
    outbox
        .submit(batch(
            Some("r"),
            vec![restrict("bob@a.example"), hold("after-restrict")],
        ))
        .await;
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    let labels = fake.labels();
    let tries = |l: &str| labels.iter().filter(|x| *x == l).count();
    assert_eq!(tries("mail"), MAX_ATTEMPTS as usize);
    assert_eq!(
        tries("after-mail"),
        0,
        "the rest of a given-up batch does not run"
    );
    assert_eq!(metrics.effect_count("hold_queued", "given_up"), 1);
    assert_eq!(tries("bob@a.example"), 21, "retried until stored");
    assert_eq!(tries("after-restrict"), 1);
    assert_eq!(metrics.effect_count("restrict", "given_up"), 0);
    assert_eq!(backoff(1), Duration::from_secs(1));
    assert_eq!(backoff(7), Duration::from_secs(60));
    assert_eq!(backoff(30), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn stop_skips_the_rest_of_the_batch() {
    let fake = Arc::new(Fake::default());
    let (outbox, _task, _m, _sd) = start(&fake);
    fake.script(
        "alert",
        vec![Step::Stop("already recorded on another node")],
    );
    outbox
        .submit(batch(
            Some("k"),
            vec![hold("alert"), hold("webhook"), hold("notify")],
        ))
        .await;
    outbox.submit(batch(None, vec![hold("next")])).await;
    settle().await;
    assert_eq!(fake.labels(), ["alert", "next"]);
}

#[tokio::test(start_paused = true)]
async fn a_full_outbox_drops_notices_with_a_count_but_waits_for_room_for_a_restriction() {
    let fake = Arc::new(Fake::default());
    let (outbox, _task, metrics, _sd) = start(&fake);
    // The task is stuck on the first effect; it holds MAX_PENDING jobs and the channel fills.
    outbox.submit(batch(None, vec![hold("block")])).await;
    settle().await;
    for i in 0..MAX_PENDING + CHANNEL + 10 {
        outbox
            .submit(batch(Some(&format!("k{i}")), vec![hold(&format!("n{i}"))]))
            .await;
    }
    let dropped = metrics.effect_count("batch", "dropped");
    assert!(dropped >= 10, "dropped {dropped}");
    // A restriction's batch does not get dropped: the caller waits until there is room.
    let outbox = Arc::new(outbox);
    let o = outbox.clone();
    let waiting = tokio::spawn(async move {
        o.submit(batch(Some("r"), vec![restrict("carol@b.example")]))
            .await;
    });
    settle().await;
    assert!(!waiting.is_finished(), "backpressure, not a drop");
    fake.gate.add_permits(1);
    waiting.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(metrics.effect_count("batch", "dropped"), dropped);
    assert_eq!(
        fake.labels().last().map(String::as_str),
        Some("carol@b.example")
    );
}

#[tokio::test(start_paused = true)]
async fn at_shutdown_what_is_queued_runs_once_without_waiting_for_retry_times() {
    let fake = Arc::new(Fake::default());
    let (outbox, task, metrics, shutdown) = start(&fake);
    fake.script(
        "flaky",
        vec![Step::Retry("down".into()), Step::Retry("down".into())],
    );
    outbox
        .submit(batch(None, vec![hold("flaky"), hold("after")]))
        .await;
    settle().await;
    shutdown.stop();
    outbox.submit(batch(None, vec![hold("late")])).await;
    task.await.unwrap();
    assert_eq!(fake.labels(), ["flaky", "late", "flaky"]);
    assert_eq!(metrics.effect_count("hold_queued", "unfinished"), 1);
}
