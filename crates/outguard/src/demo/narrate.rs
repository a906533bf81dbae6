//! How the demo talks: a step counter with elapsed time, one line per event, the verdicts read
//! back from the relay's own trace (the store `outguard trace` reads), and a watcher that prints
//! each delivery as a destination MX receives it — with the pool and source IP it came from.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outguard_store::Store;
use outguard_types::model::{EventKind, TraceEvent};

use super::scene::{World, pool_of};

/// Pauses between the story's beats, scaled by `--speed`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub speed: f64,
    pub start: Instant,
}

impl Pace {
    pub async fn pause(&self, secs: f64) {
        let s = (secs / self.speed.max(0.01)).clamp(0.0, 60.0);
        tokio::time::sleep(Duration::from_secs_f64(s)).await;
    }

    fn stamp(&self) -> String {
        format!("{:>6.1}s", self.start.elapsed().as_secs_f64())
    }

    /// A step header: `[2/6] title`.
    pub fn step(&self, n: usize, of: usize, title: &str) {
        println!();
        println!("{} [{n}/{of}] {title}", self.stamp());
    }

    /// One narrated line under the current step.
    pub fn say(&self, text: &str) {
        println!("{}   {text}", self.stamp());
    }
}

/// The trace of a message once its verdict and queue decision are recorded (the tracer writes
/// in batches, so poll briefly).
pub async fn trace_of(store: &Store, id: &str) -> Vec<TraceEvent> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = store.events(id).await.unwrap_or_default();
        let decided = events.iter().any(|e| {
            matches!(
                e.kind,
                EventKind::Queued | EventKind::Held | EventKind::Quarantined
            )
        });
        if decided || Instant::now() >= deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Narrate one accepted message: its verdict with the top reasons, the policy's numbers, and
/// where it was queued.
pub async fn narrate_accepted(pace: &Pace, store: &Store, id: &str) {
    let events = trace_of(store, id).await;
    if events.is_empty() {
        pace.say(&format!("  (no trace yet for {id})"));
    }
    for e in &events {
        match e.kind {
            EventKind::Verdict => pace.say(&format!("  verdict: {}", e.detail)),
            EventKind::Policy => {
                let short = policy_summary(&e.detail);
                if !short.is_empty() {
                    pace.say(&format!("  {short}"));
                }
            }
            EventKind::Queued | EventKind::Held | EventKind::Quarantined => {
                pace.say(&format!("  {}", e.detail))
            }
            _ => {}
        }
    }
}

/// A policy event's detail ("policy NAME: measure; measure; …; outcome") has one set of
/// measures per recipient: keep the latest value of each, without the service ceiling.
pub fn policy_summary(detail: &str) -> String {
    let Some((name, rest)) = detail.split_once(": ") else {
        return detail.to_string();
    };
    let mut kept: Vec<(String, String)> = Vec::new();
    for part in rest
        .split("; ")
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.contains("service ceiling"))
    {
        let key = part.split(':').next().unwrap_or(part).to_string();
        match kept.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = part.to_string(),
            None => kept.push((key, part.to_string())),
        }
    }
    let parts: Vec<String> = kept.into_iter().map(|(_, v)| v).collect();
    format!("{name}: {}", parts.join("; "))
}

/// The `X-Outguard-Id` header of a delivered message.
pub fn outguard_id(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.lines().find_map(|l| {
        l.strip_prefix("X-Outguard-Id:")
            .map(|v| v.trim().to_string())
    })
}

fn subject_of(data: &[u8]) -> String {
    mail_parser::MessageParser::new()
        .parse_headers(data)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

/// One message a destination MX received, as the narration shows it.
struct Received {
    id: Option<String>,
    text: String,
    /// The relay's own mail (a notification, a DSN): told as such, never under a tenant's block.
    own: Option<&'static str>,
    seen_at: Instant,
}

#[derive(Default)]
struct BoardState {
    seen: HashSet<(usize, usize)>,
    waiting: Vec<Received>,
    /// Queue ids the story is narrating: their deliveries wait for [`Deliveries::show`].
    expected: HashSet<String>,
}

/// What the destination MX hosts received, for the narration (issue 20: deliveries were printed
/// the moment they arrived, so "delivered" came before the message's verdict and the relay's
/// notification showed under the newsletter's block). A message the story submits has its
/// delivery shown under its own block, after its verdict ([`Deliveries::show`]); the relay's
/// own mail is shown as a notification or DSN as it arrives; a later delivery (after a
/// greylisting retry) is shown as such.
pub struct Deliveries {
    world: Arc<World>,
    state: std::sync::Mutex<BoardState>,
}

/// How long an unexpected tenant delivery waits before the watcher tells it: the story marks
/// a message expected just after its `250`, which the delivery may beat by a few milliseconds.
const GRACE: Duration = Duration::from_secs(1);

impl Deliveries {
    pub fn new(world: Arc<World>) -> Arc<Deliveries> {
        Arc::new(Deliveries {
            world,
            state: std::sync::Mutex::new(BoardState::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoardState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Collect what the sinks received since the last look.
    fn poll(&self) {
        let mut st = self.lock();
        for (s, (name, sink)) in self.world.sinks().iter().enumerate() {
            for (i, m) in sink.messages().iter().enumerate() {
                if !st.seen.insert((s, i)) {
                    continue;
                }
                let ip = m.peer.ip();
                let from = if m.mail_from.is_empty() {
                    "<>"
                } else {
                    &m.mail_from
                };
                let own = if m.mail_from.is_empty() {
                    Some("DSN")
                } else if m.mail_from.starts_with("postmaster@") {
                    Some("the relay's notification")
                } else {
                    None
                };
                st.waiting.push(Received {
                    id: outguard_id(&m.data),
                    text: format!(
                        "{name} [{}]: {from} → {} \"{}\" from pool {} {ip} (EHLO {})",
                        m.local.ip(),
                        m.rcpts.join(", "),
                        subject_of(&m.data),
                        pool_of(ip),
                        m.ehlo
                    ),
                    own,
                    seen_at: Instant::now(),
                });
            }
        }
    }

    /// The story is about to narrate queue id `id`: hold its delivery for [`Deliveries::show`].
    pub fn expect(&self, id: &str) {
        self.lock().expected.insert(id.to_string());
    }

    /// Under `id`'s block, after its verdict: what its first delivery round delivered. Waits
    /// until the trace shows that round over (delivered, deferred, bounced) or the message
    /// held, at most `wait`; a later delivery (greylisting) is told by the watcher.
    pub async fn show(&self, pace: &Pace, store: &Store, id: &str, wait: Duration) {
        let until = Instant::now() + wait;
        loop {
            let events = store.events(id).await.unwrap_or_default();
            let round_over = events.iter().any(|e| {
                matches!(
                    e.kind,
                    EventKind::Delivered
                        | EventKind::Deferred
                        | EventKind::Bounced
                        | EventKind::Held
                        | EventKind::Quarantined
                )
            });
            if round_over || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.poll();
        let mine: Vec<Received> = {
            let mut st = self.lock();
            let (mine, rest) = std::mem::take(&mut st.waiting)
                .into_iter()
                .partition(|r| r.id.as_deref() == Some(id) && r.own.is_none());
            st.waiting = rest;
            st.expected.remove(id);
            mine
        };
        for r in &mine {
            pace.say(&format!("  delivered to {}", r.text));
        }
    }

    /// What nobody is waiting for: the relay's own mail at once, a tenant message's later
    /// delivery once past [`GRACE`].
    fn unclaimed(&self) -> Vec<String> {
        let mut st = self.lock();
        let now = Instant::now();
        let expected = st.expected.clone();
        let (tell, keep): (Vec<Received>, Vec<Received>) = std::mem::take(&mut st.waiting)
            .into_iter()
            .partition(|r| match (r.own, &r.id) {
                (Some(_), _) => true,
                (None, Some(id)) if expected.contains(id) => false,
                (None, _) => now.duration_since(r.seen_at) >= GRACE,
            });
        st.waiting = keep;
        tell.into_iter()
            .map(|r| match (r.own, r.id) {
                (Some(what), _) => format!("  {what} delivered to {}", r.text),
                (None, Some(id)) => format!("  delivered later ({id}) to {}", r.text),
                (None, None) => format!("  delivered to {}", r.text),
            })
            .collect()
    }
}

/// Tell what nobody narrates (the relay's own mail, retried deliveries) until aborted.
pub fn watch_deliveries(pace: Pace, board: Arc<Deliveries>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            board.poll();
            for line in board.unclaimed() {
                pace.say(&line);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Subject and the first lines of the body of a received message, for showing it in full.
pub fn excerpt(data: &[u8], lines: usize) -> (String, Vec<String>) {
    let parsed = mail_parser::MessageParser::new().parse(data);
    let subject = parsed
        .as_ref()
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default();
    let body = parsed
        .as_ref()
        .and_then(|m| m.body_text(0).map(|b| b.into_owned()))
        .unwrap_or_default();
    let first = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .take(lines)
        .map(str::to_string)
        .collect();
    (subject, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_outguard_id_and_an_excerpt() {
        let m = b"X-Outguard-Id: 01ABC\r\nSubject: Hello there\r\nFrom: a@b.example\r\n\r\nline one\r\n\r\nline two\r\nline three\r\n";
        assert_eq!(outguard_id(m).as_deref(), Some("01ABC"));
        assert_eq!(
            outguard_id(b"Subject: x\r\n\r\nX-Outguard-Id: no\r\n"),
            None
        );
        let (s, first) = excerpt(m, 2);
        assert_eq!(s, "Hello there");
        assert_eq!(first, ["line one", "line two"]);
    }

    #[test]
    fn policy_summary_keeps_the_latest_measure_of_each_kind() {
        let d = "policy default: external recipients in last hour: 1 <= 10; recipients in last 24 hours (service ceiling): 1 <= 10000; \
                 external recipients in last hour: 2 <= 10; clean";
        assert_eq!(
            policy_summary(d),
            "policy default: external recipients in last hour: 2 <= 10; clean"
        );
        assert_eq!(policy_summary("no colon"), "no colon");
    }
}
