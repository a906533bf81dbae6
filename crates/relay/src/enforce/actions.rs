//! Side effects of a policy action (SPEC §3): a restriction is stored and takes hold at once,
//! the subject's queued mail is held, an alert is recorded (within its daily notification cap
//! it also goes to webhooks), and the tenant's notification recipients get the email in the
//! seed's format through our own queue from the `regular` pool.

use outguard_policy::{Action, CapDecision, NotificationEnvelope, Restriction, Subject};
use outguard_store::spool::{Envelope, new_message_id};
use outguard_types::model::{EventKind, Submitter};
use outguard_types::policy::EffectivePolicy;
use serde_json::json;

use crate::server::Relay;
use outguard_types::time::now_ms;

impl Relay {
    pub(crate) async fn apply_action(&self, action: Action, eff: &EffectivePolicy) {
        let alert = action.alert();
        if let Action::Restrict { restriction } = &action
            && !self.restrict(restriction, eff).await
        {
            return; // another session or node restricted first and raised the alert
        }
        let tenant = alert.tenant.clone().unwrap_or_default();
        // A restriction was decided once above; a bare alert (action `alert`, complaint and
        // bounce rates) may be raised by every node that sees the crossing: the dedup key
        // (kind, subject, cause, UTC day) lets exactly one record and notify it.
        let stored = match &action {
            Action::Alert { .. } => {
                self.store
                    .insert_alert_once(&alert, &alert.dedup_key())
                    .await
            }
            Action::Restrict { .. } => self.store.insert_alert(&alert).await.map(Some),
        };
        match stored {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::info!(kind = alert.kind.as_str(), %tenant, summary = %alert.summary,
                    "alert already recorded today (here or on another node); not notifying again");
                return;
            }
            Err(e) => tracing::error!(error = %e, "cannot record alert"),
        }
        let decision = self
            .alert_cap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(&tenant, alert.kind, alert.created_at);
        tracing::warn!(kind = alert.kind.as_str(), %tenant, summary = %alert.summary, "alert");
        if matches!(decision, CapDecision::Notify { .. }) {
            self.webhooks.send(&alert);
            if let Action::Restrict { restriction } = &action {
                self.notify_restricted(restriction, eff).await;
            }
        }
    }

    /// Store the restriction (at most one active per subject, cluster-wide), enforce it here at
    /// once and hold this node's queued mail. Returns whether this call decided it (and so must
    /// raise the alert and the notification); `false` when one was already active.
    async fn restrict(&self, r: &Restriction, _eff: &EffectivePolicy) -> bool {
        let decided = match self.store.insert_restriction_once(r).await {
            Ok(Some(id)) => {
                self.metrics.restriction(r);
                tracing::warn!(subject = r.subject.id(), %id, limit = r.reason.limit.as_str(), "restricted");
                true
            }
            Ok(None) => {
                tracing::info!(
                    subject = r.subject.id(),
                    "already restricted elsewhere; not notifying again"
                );
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store restriction; enforcing it on this node only");
                true
            }
        };
        self.enforcer.cache.push_restriction(r.clone());
        self.hold_queued(&r.subject).await;
        decided
    }

    /// Hold every queued message of the restricted account, connector or tenant (the queue
    /// records a `held` trace event for each).
    pub async fn hold_queued(&self, subject: &Subject) {
        let held = self
            .queue
            .hold_matching(|env| match subject {
                Subject::Account(a) => {
                    matches!(&env.submitter, Submitter::Account(x) if x.eq_ignore_ascii_case(a))
                }
                Subject::Connector(c) => {
                    matches!(&env.submitter, Submitter::Connector(x) if x == c)
                }
                Subject::Tenant(t) => env.tenant.as_deref() == Some(t.as_str()),
            })
            .await;
        if !held.is_empty() {
            tracing::warn!(
                subject = subject.id(),
                count = held.len(),
                "held queued mail of a restricted sender"
            );
        }
    }

    /// The email of `seeds/000_…txt` to the policy's notification recipients.
    async fn notify_restricted(&self, r: &Restriction, eff: &EffectivePolicy) {
        if eff.notify_recipients.is_empty() {
            tracing::info!(
                subject = r.subject.id(),
                "no notification recipients configured for this tenant"
            );
            return;
        }
        let host = &self.cfg.server.hostname;
        let env = NotificationEnvelope {
            hostname: host,
            from: self.cfg.notifications.from.as_deref(),
            to: &eff.notify_recipients,
            max_unblocks_per_day: eff.max_unblocks_per_day,
        };
        let now = now_ms();
        let body = outguard_policy::render_notification(&r.subject, &r.reason, r.until, &env, now);
        self.send_system_mail(
            &format!("postmaster@{host}"),
            &eff.notify_recipients,
            Some(r.tenant.clone()),
            body,
            "notification",
        )
        .await;
    }

    /// Spool and queue a message Outguard itself writes (notifications), from `regular`.
    pub async fn send_system_mail(
        &self,
        from: &str,
        to: &[String],
        tenant: Option<String>,
        body: Vec<u8>,
        what: &str,
    ) {
        let id = new_message_id();
        let env = Envelope {
            id: id.clone(),
            mail_from: from.to_string(),
            rcpts: to.to_vec(),
            tenant,
            submitter: Submitter::System,
            pool: "regular".into(),
            received_at: now_ms(),
            class: None,
            score: None,
            held: false,
            quarantined: false,
            extra_headers: vec![],
        };
        if let Err(e) = self.spool.accept(&env, &body).await {
            tracing::error!(error = %e, "cannot spool the {what}");
            return;
        }
        let rec = crate::pipeline::system_record(self, &env, body.len(), what);
        self.tracer
            .record(outguard_store::trace::TraceRecord::Message(Box::new(rec)))
            .await;
        self.tracer
            .event(
                &id,
                EventKind::Queued,
                format!("{what} queued for the regular pool"),
                json!({"pool": "regular"}),
            )
            .await;
        self.queue.enqueue_envelope(env);
    }
}
