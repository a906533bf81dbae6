//! The queue's events (trace entries, message states) on their way to the store writer, in the
//! order they happened. The channel is bounded; when the writer lags, events wait in an overflow
//! line that one drainer task empties in order — never a task per event, which let a `deferred`
//! overtake a `delivered`. The overflow is capped: past it events are dropped and counted, and
//! the message's spool state (the truth for delivery) is unaffected.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

/// Events that may wait behind a lagging writer before new ones are dropped.
const MAX_OVERFLOW: usize = 100_000;

#[derive(Default)]
struct Overflow<T> {
    waiting: VecDeque<T>,
    /// A drainer task is running; new events queue behind it to keep the order.
    draining: bool,
    dropped: u64,
}

/// An ordered, bounded sender in front of `tx`.
pub struct OrderedSender<T: Send + 'static> {
    tx: mpsc::Sender<T>,
    overflow: Arc<Mutex<Overflow<T>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> OrderedSender<T> {
    pub fn new(tx: mpsc::Sender<T>) -> OrderedSender<T> {
        OrderedSender {
            tx,
            overflow: Arc::new(Mutex::new(Overflow {
                waiting: VecDeque::new(),
                draining: false,
                dropped: 0,
            })),
        }
    }

    /// Send without blocking the caller, keeping the order of every event sent through here.
    pub fn send(&self, ev: T) {
        let mut o = lock(&self.overflow);
        if !o.draining {
            match self.tx.try_send(ev) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    o.waiting.push_back(ev);
                    o.draining = true;
                    drop(o);
                    self.spawn_drainer();
                    return;
                }
            }
        }
        if o.waiting.len() >= MAX_OVERFLOW {
            o.dropped += 1;
            if o.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = o.dropped,
                    "queue events dropped: the store writer lags"
                );
            }
            return;
        }
        o.waiting.push_back(ev);
    }

    fn spawn_drainer(&self) {
        let (tx, overflow) = (self.tx.clone(), self.overflow.clone());
        tokio::spawn(async move {
            loop {
                let next = {
                    let mut o = lock(&overflow);
                    match o.waiting.pop_front() {
                        Some(ev) => ev,
                        None => {
                            o.draining = false;
                            return;
                        }
                    }
                };
                if tx.send(next).await.is_err() {
                    let mut o = lock(&overflow);
                    o.waiting.clear();
                    o.draining = false;
                    return;
                }
            }
        });
    }

    /// Events dropped because the overflow was full.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        lock(&self.overflow).dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lagging_reader_gets_every_event_in_order() {
        let (tx, mut rx) = mpsc::channel(4);
        let s = OrderedSender::new(tx);
        for i in 0..1000u32 {
            s.send(i);
        }
        let mut got = Vec::new();
        while got.len() < 1000 {
            got.push(rx.recv().await.expect("event"));
        }
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        // Once drained, sends go straight to the channel again, still in order.
        tokio::task::yield_now().await;
        s.send(1000);
        s.send(1001);
        assert_eq!(rx.recv().await, Some(1000));
        assert_eq!(rx.recv().await, Some(1001));
        assert_eq!(s.dropped(), 0);
    }
}
