//! Queue actions on one message — release, hold, retry now, delete — with the scope rule (a
//! tenant role acts on its own tenant's mail only; mail without a tenant is the operator's) and
//! one audit entry each. The queue itself is reached through [`Queue`]: the running server's
//! queue for the API and the UI, the spool directly for the CLI while no server runs.

use std::future::Future;

use outguard_policy::Subject;
use outguard_store::Store;
use outguard_store::spool::SpoolError;

use super::{Actor, OpsError};

/// A queue action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Release,
    Hold,
    Retry,
    Delete,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "release" => Some(Action::Release),
            "hold" => Some(Action::Hold),
            "retry" => Some(Action::Retry),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    /// The audit log's name of the action.
    pub fn audit_name(self) -> &'static str {
        match self {
            Action::Release => "queue.release",
            Action::Hold => "queue.hold",
            Action::Retry => "queue.retry",
            Action::Delete => "queue.delete",
        }
    }
}

/// The queue as an interface reaches it.
pub trait Queue {
    /// The tenant of a queued message (`None`: service mail), or `NotFound` when it is not
    /// queued here.
    fn tenant_of(&self, id: &str) -> impl Future<Output = Result<Option<String>, OpsError>> + Send;
    /// Apply `action` to a message known to be queued.
    fn apply(&self, id: &str, action: Action) -> impl Future<Output = Result<(), OpsError>> + Send;
    /// The ids of the held messages that belong to `subject`.
    fn held_of(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Vec<String>, OpsError>> + Send;
    /// A lift is stored: make it hold here before its mail is released (a running relay would
    /// hold a restricted account's mail again).
    fn restrictions_changed(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The answer for a message that is not queued (or not the actor's).
pub fn not_queued(id: &str) -> OpsError {
    OpsError::NotFound(format!("message {id} is not in the queue"))
}

impl From<SpoolError> for OpsError {
    fn from(e: SpoolError) -> OpsError {
        match e {
            SpoolError::NotFound(id) | SpoolError::BadId(id) => not_queued(&id),
            other => {
                tracing::error!(error = %other, "spool failure in a management action");
                OpsError::Internal("the spool failed".into())
            }
        }
    }
}

/// Apply `action` to message `id` after the scope and role checks; audited.
pub async fn act(
    store: &Store,
    actor: &Actor,
    queue: &impl Queue,
    id: &str,
    action: Action,
) -> Result<(), OpsError> {
    let tenant = queue.tenant_of(id).await?;
    if !actor.sees_opt(tenant.as_deref()) {
        return Err(not_queued(id));
    }
    actor.require_write()?;
    queue.apply(id, action).await?;
    actor.audit(store, action.audit_name(), id, "").await
}

/// Release the held mail of `subject` (after its lift); each release audited. Sorted ids.
pub async fn release_held(
    store: &Store,
    actor: &Actor,
    queue: &impl Queue,
    subject: &Subject,
) -> Result<Vec<String>, OpsError> {
    queue.restrictions_changed().await;
    let mut released = Vec::new();
    for id in queue.held_of(subject).await? {
        queue.apply(&id, Action::Release).await?;
        actor
            .audit(store, "queue.release", &id, "released with the lift")
            .await?;
        released.push(id);
    }
    released.sort();
    Ok(released)
}
