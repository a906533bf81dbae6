//! The trace writer: every step of a message's life becomes a [`TraceEvent`] (SPEC §2.8). The
//! SMTP and delivery paths hand records to a bounded channel; one task writes them to the store
//! in batches, so the hot path never waits on a database round trip per event.

use std::time::Duration;

use crate::Store;
use crate::messages::TraceWrite;
use outguard_types::model::{EventKind, MessageRecord, MessageState, TraceEvent};
use tokio::sync::mpsc;

/// What the writer persists, in order.
#[derive(Debug)]
pub enum TraceRecord {
    Message(Box<MessageRecord>),
    Event(TraceEvent),
    State {
        id: String,
        state: MessageState,
        pool: Option<String>,
    },
    /// A recipient the policy refused at RCPT (for the what-if simulator).
    Refusal(Box<crate::PolicyRefusal>),
}

#[derive(Clone, Debug)]
pub struct Tracer {
    tx: mpsc::Sender<TraceRecord>,
    clock: outguard_types::time::Clock,
}

impl Tracer {
    /// Start the writer task; it ends when every `Tracer` clone is dropped, after a final flush.
    pub fn start(
        store: Store,
        clock: outguard_types::time::Clock,
    ) -> (Tracer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(20_000);
        let handle = tokio::spawn(writer(store, rx));
        (Tracer { tx, clock }, handle)
    }

    pub async fn record(&self, r: TraceRecord) {
        if self.tx.send(r).await.is_err() {
            tracing::warn!("trace writer has stopped; event not recorded");
        }
    }

    pub async fn event(
        &self,
        message_id: &str,
        kind: EventKind,
        detail: impl Into<String>,
        data: serde_json::Value,
    ) {
        let ev = TraceEvent {
            message_id: message_id.to_string(),
            at: self.clock.now_ms(),
            kind,
            detail: detail.into(),
            data,
        };
        self.record(TraceRecord::Event(ev)).await;
    }

    pub fn sender(&self) -> mpsc::Sender<TraceRecord> {
        self.tx.clone()
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<TraceRecord>) {
    let mut batch = Vec::with_capacity(512);
    loop {
        let n = rx.recv_many(&mut batch, 512).await;
        if n == 0 {
            return;
        }
        // Let a burst gather for a moment so one transaction carries many events.
        if n < 64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            while batch.len() < 512 {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
        }
        flush(&store, &mut batch).await;
    }
}

/// The mail log: one line per message and per event of its life, in the order they happened,
/// under the target `outguard::mail` (`OUTGUARD_LOG=outguard::mail=info` keeps only these).
/// Text by default, JSON with `--log-format json`; the trace in the store has the same facts.
fn log_line(r: &TraceRecord) {
    match r {
        // The session already logged its `refused` line.
        TraceRecord::Refusal(_) => {}
        TraceRecord::Message(m) => tracing::info!(
            target: "outguard::mail",
            id = %m.id,
            event = "message",
            tenant = m.tenant.as_deref().unwrap_or("-"),
            submitter = ?m.submitter,
            from = %printable(&m.mail_from),
            rcpts = m.rcpts.len(),
            size = m.size,
            "message"
        ),
        TraceRecord::Event(e) => tracing::info!(
            target: "outguard::mail",
            id = %e.message_id,
            event = e.kind.as_str(),
            data = %e.data,
            "{}",
            printable(&e.detail)
        ),
        TraceRecord::State { id, state, pool } => tracing::info!(
            target: "outguard::mail",
            %id,
            event = "state",
            state = state.as_str(),
            pool = pool.as_deref().unwrap_or("-"),
            "state"
        ),
    }
}

/// An event's detail can carry what a client or a reporter wrote (HELO, report fields): control
/// characters are escaped so a log line stays one line and cannot drive an operator's terminal.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

async fn flush(store: &Store, batch: &mut Vec<TraceRecord>) {
    for r in batch.iter() {
        log_line(r);
    }
    // The whole batch in one transaction (one commit for hundreds of records); should it fail
    // (one bad record aborts a PostgreSQL transaction), record by record, so the others land.
    let refusals: Vec<crate::PolicyRefusal> = batch
        .iter()
        .filter_map(|r| match r {
            TraceRecord::Refusal(x) => Some((**x).clone()),
            _ => None,
        })
        .collect();
    if let Err(e) = store.insert_policy_refusals(&refusals).await {
        tracing::warn!(error = %e, count = refusals.len(), "cannot record refused recipients");
    }
    let writes: Vec<TraceWrite<'_>> = batch
        .iter()
        .filter_map(|r| match r {
            TraceRecord::Event(e) => Some(TraceWrite::Event(e)),
            TraceRecord::Message(m) => Some(TraceWrite::Message(m)),
            TraceRecord::State { id, state, pool } => Some(TraceWrite::State {
                id,
                state: *state,
                pool: pool.as_deref(),
            }),
            TraceRecord::Refusal(_) => None,
        })
        .collect();
    let one_by_one = match store.write_trace_batch(&writes).await {
        Ok(()) => false,
        Err(e) => {
            tracing::warn!(error = %e, count = writes.len(), "trace batch failed; writing record by record");
            true
        }
    };
    drop(writes);
    if one_by_one {
        flush_one_by_one(store, batch).await;
    }
    batch.clear();
}

async fn flush_one_by_one(store: &Store, batch: &mut Vec<TraceRecord>) {
    let mut events = Vec::new();
    for r in batch.drain(..) {
        match r {
            TraceRecord::Event(e) => events.push(e),
            TraceRecord::Message(m) => {
                write_events(store, &mut events).await;
                if let Err(e) = store.insert_message(&m).await {
                    tracing::error!(id = %m.id, error = %e, "cannot record message");
                }
            }
            // Written (or given up) with the batch.
            TraceRecord::Refusal(_) => {}
            TraceRecord::State { id, state, pool } => {
                write_events(store, &mut events).await;
                if let Err(e) = store.set_message_state(&id, state, pool.as_deref()).await {
                    tracing::error!(%id, error = %e, "cannot record message state");
                }
            }
        }
    }
    write_events(store, &mut events).await;
}

async fn write_events(store: &Store, events: &mut Vec<TraceEvent>) {
    if events.is_empty() {
        return;
    }
    if let Err(e) = store.append_events(events).await {
        tracing::error!(error = %e, count = events.len(), "cannot record trace events");
    }
    events.clear();
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn log_details_stay_one_printable_line() {
        assert_eq!(printable("from mx [127.0.0.1]"), "from mx [127.0.0.1]");
        assert_eq!(
            printable("evil\u{1b}[31m\r\nINFO forged"),
            "evil\\u{1b}[31m\\r\\nINFO forged"
        );
    }
}
