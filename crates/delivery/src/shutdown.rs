//! Designed shutdown (STYLE rule 5): a handle passed explicitly; `drain` makes listeners answer
//! `421 4.3.2` and idle sessions close, in-flight guards let transactions finish, `wait_idle`
//! bounds it with the grace timeout, `stop` ends the accept loops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

#[derive(Clone, Debug)]
pub struct Shutdown {
    draining: watch::Sender<bool>,
    stopped: watch::Sender<bool>,
    inflight: Arc<(AtomicUsize, Notify)>,
}

/// Held by each session; the count reaching zero wakes `wait_idle`.
pub struct InFlight(Arc<(AtomicUsize, Notify)>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.1.notify_waiters();
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            draining: watch::channel(false).0,
            stopped: watch::channel(false).0,
            inflight: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }

    pub fn in_flight(&self) -> InFlight {
        self.inflight.0.fetch_add(1, Ordering::SeqCst);
        InFlight(self.inflight.clone())
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    pub async fn draining(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    pub async fn stopped(&self) {
        let mut rx = self.stopped.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    pub fn stop(&self) {
        self.draining.send_replace(true);
        self.stopped.send_replace(true);
    }

    /// Wait until no session is in flight, or the grace period ends.
    pub async fn wait_idle(&self, grace: Duration) {
        let wait = async {
            loop {
                let notified = self.inflight.1.notified();
                if self.inflight.0.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            tracing::warn!(
                sessions = self.inflight.0.load(Ordering::SeqCst),
                "grace period over; closing remaining sessions"
            );
        }
    }
}

pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
