//! The relay's [`Runner`]: each [`Effect`] against the store, the queue, the spool, the alert
//! cap and the webhook sender. It holds the relay weakly (the relay holds the outbox): once the
//! relay is gone there is nothing left to run effects on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;

use outguard_policy::{CapDecision, Restriction, Subject};
use outguard_store::spool::{Envelope, new_message_id};
use outguard_types::model::{EventKind, Submitter};
use outguard_types::time::Clock;
use serde_json::json;

use super::{Effect, Runner, Step, SystemMail};
use crate::server::Relay;

pub struct RelayEffects {
    relay: Weak<Relay>,
    clock: Clock,
}

impl RelayEffects {
    pub fn new(relay: Weak<Relay>, clock: Clock) -> RelayEffects {
        RelayEffects { relay, clock }
    }
}

impl Runner for RelayEffects {
    fn run<'a>(&'a self, effect: &'a Effect) -> Pin<Box<dyn Future<Output = Step> + Send + 'a>> {
        Box::pin(async move {
            let Some(relay) = self.relay.upgrade() else {
                return Step::Stop("the relay is gone");
            };
            let now = self.clock.now_ms();
            match effect {
                Effect::HoldQueued { subject } => {
                    relay.hold_queued(subject).await;
                    Step::Next
                }
                Effect::Restrict { restriction } => store_restriction(&relay, restriction).await,
                Effect::Alert {
                    alert,
                    once,
                    cap_scope,
                } => {
                    let stored = match once {
                        Some(key) => relay.store.insert_alert_once(alert, key).await,
                        None => relay.store.insert_alert(alert).await.map(Some),
                    };
                    match stored {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            return Step::Stop(
                                "alert already recorded (here or on another node); not notifying again",
                            );
                        }
                        Err(e) => return Step::Retry(format!("cannot record alert: {e}")),
                    }
                    tracing::warn!(kind = alert.kind.as_str(), tenant = %cap_scope, summary = %alert.summary, "alert");
                    let decision = relay
                        .alert_cap
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .admit(cap_scope, alert.kind, now);
                    match decision {
                        CapDecision::Notify { .. } => Step::Next,
                        CapDecision::Suppress { .. } => {
                            Step::Stop("daily notification cap reached; alert recorded only")
                        }
                    }
                }
                Effect::Webhook { alert } => {
                    relay.webhooks.send(alert);
                    Step::Next
                }
                Effect::Notify { mail } => match relay.send_system_mail(mail, now).await {
                    Ok(()) => Step::Next,
                    Err(e) => Step::Retry(e),
                },
            }
        })
    }
}

/// The write the crossing could not make: store it now. Someone else's restriction of the
/// same subject found first means the notices are theirs.
async fn store_restriction(relay: &Relay, r: &Restriction) -> Step {
    match relay.store.insert_restriction_once(r).await {
        Ok(Some(id)) => {
            relay.metrics.restriction(r);
            tracing::warn!(subject = r.subject.id(), %id, limit = r.reason.limit.as_str(), "restriction stored after a retry");
            Step::Next
        }
        Ok(None) => Step::Stop("already restricted elsewhere; not notifying again"),
        Err(e) => Step::Retry(format!(
            "cannot store restriction of {}: {e}",
            r.subject.id()
        )),
    }
}

impl Relay {
    /// Hold every queued message of the restricted account, connector or tenant (the queue
    /// records a `held` trace event for each).
    pub async fn hold_queued(&self, subject: &Subject) {
        let held = self
            .queue
            .hold_matching(|env| crate::enforce::lift::belongs_to(env, subject))
            .await;
        if !held.is_empty() {
            tracing::warn!(
                subject = subject.id(),
                count = held.len(),
                "held queued mail of a restricted sender"
            );
        }
    }

    /// Spool and queue a message Outguard itself writes, from `regular`. An error (the spool
    /// refused it) is worth retrying.
    pub async fn send_system_mail(&self, mail: &SystemMail, now: i64) -> Result<(), String> {
        let what = mail.what;
        let id = new_message_id();
        let env = Envelope {
            id: id.clone(),
            mail_from: mail.from.clone(),
            rcpts: mail.to.clone(),
            tenant: mail.tenant.clone(),
            submitter: Submitter::System,
            pool: "regular".into(),
            received_at: now,
            class: None,
            score: None,
            held: false,
            quarantined: false,
            extra_headers: vec![],
            extra_headers_to: None,
        };
        if let Err(e) = self.spool.accept(&env, &mail.body).await {
            return Err(format!("cannot spool the {what}: {e}"));
        }
        let rec = crate::pipeline::system_record(self, &env, mail.body.len(), what);
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
        Ok(())
    }
}
