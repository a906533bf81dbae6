//! The process's long-running tasks, by name: each is spawned on one `TaskTracker`, and at the
//! end of a run `join` waits for them (bounded) and names any that did not stop, instead of
//! leaving them to be dropped unseen with the runtime.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// Named, tracked tasks. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    running: Arc<Mutex<BTreeMap<u64, &'static str>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Spawn `fut` as the task `name`.
    pub fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(id, name);
        let running = self.running.clone();
        self.tracker.spawn(async move {
            fut.await;
            running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
    }

    /// The names of the tasks still running, sorted.
    pub fn running(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.lock().values().copied().collect();
        v.sort_unstable();
        v
    }

    /// Wait up to `grace` for every task to end; returns the names of those that did not.
    pub async fn join(&self, grace: Duration) -> Vec<&'static str> {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return Vec::new();
        }
        let left = self.running();
        tracing::warn!(tasks = ?left, "tasks still running at the end of shutdown");
        left
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, &'static str>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn join_waits_for_tasks_and_names_those_that_hang() {
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("quick", async {
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        tasks.spawn("stuck", async move {
            let _ = rx.await;
        });
        assert_eq!(tasks.running(), vec!["quick", "stuck"]);
        assert_eq!(tasks.join(Duration::from_secs(5)).await, vec!["stuck"]);
        drop(tx);
        assert!(tasks.join(Duration::from_secs(5)).await.is_empty());
    }
}
