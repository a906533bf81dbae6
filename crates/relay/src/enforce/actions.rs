//! Taking a policy action (SPEC §3). The part that must hold before the command that crossed a
//! limit is answered is done here, in the session: a restriction is put in this node's cache
//! and written to the store (at most one active per subject, cluster-wide), so the next command
//! on any session of any node is refused. Everything else — holding queued mail, the alert, the
//! webhook, the notification email — is planned as [`Effect`](crate::outbox::Effect)s and
//! handed to the outbox, which runs them after the reply, in order, once, with retries.

use outguard_policy::{Action, Restriction};
use outguard_types::policy::EffectivePolicy;

use crate::outbox::{Notices, Recorded, plan_action};
use crate::server::Relay;

impl Relay {
    /// Take `action`: record a restriction at once, queue the rest.
    pub(crate) async fn take_action(&self, action: Action, eff: &EffectivePolicy) {
        let recorded = match &action {
            Action::Restrict { restriction } => Some(self.restrict(restriction).await),
            Action::Alert { .. } => None,
        };
        let notices = Notices {
            hostname: &self.cfg.server.hostname,
            from: self.cfg.notifications.from.as_deref(),
        };
        let now = self.clock.now_ms();
        let told = matches!(recorded, Some(Recorded::Here | Recorded::Unstored));
        if told && eff.notify_recipients.is_empty() {
            tracing::info!(
                tenant = action.alert().tenant.as_deref().unwrap_or(""),
                "no notification recipients configured for this tenant"
            );
        }
        let batch = plan_action(&action, recorded, eff, notices, now);
        self.outbox.submit(batch).await;
    }

    /// Enforce the restriction here at once and store it. A store that fails leaves it in force
    /// on this node (from the cache) and to the outbox to store.
    async fn restrict(&self, r: &Restriction) -> Recorded {
        self.enforcer.cache.push_restriction(r.clone());
        match self.store.insert_restriction_once(r).await {
            Ok(Some(id)) => {
                self.metrics.restriction(r);
                tracing::warn!(subject = r.subject.id(), %id, limit = r.reason.limit.as_str(), "restricted");
                Recorded::Here
            }
            Ok(None) => {
                tracing::info!(
                    subject = r.subject.id(),
                    "already restricted elsewhere; not notifying again"
                );
                Recorded::AlreadyActive
            }
            Err(e) => {
                tracing::error!(error = %e, subject = r.subject.id(), "cannot store restriction; enforcing it on this node and retrying the write");
                Recorded::Unstored
            }
        }
    }
}
