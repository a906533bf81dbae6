//! The allowance of mail from unregistered domains (SPEC §9): a forwarding connector's message
//! whose sender domain the tenant has not verified is counted per tenant at MAIL; past
//! `[limits] unregistered_domain_messages_per_hour` it is refused with `550 5.7.750` and the
//! tenant is blocked until an operator lifts it. The decision is `outguard-policy`'s
//! [`outguard_policy::admit_unregistered`]; this is its seam to the counters and the
//! restriction side effects.

use outguard_policy::UnregisteredDecision;
use outguard_proto::Reply;

use super::{TxnPolicy, counter_trouble, reply_of};
use crate::server::Relay;
use crate::smtp::checks::SenderKind;
use crate::smtp::identity::Identity;

impl Relay {
    /// MAIL, after [`Relay::policy_at_mail`]: count a connector's forwarded message.
    pub async fn policy_unregistered(
        &self,
        id: &Identity,
        kind: &SenderKind,
        txn: &mut TxnPolicy,
    ) -> Result<(), Reply> {
        let (Identity::Connector { tenant, .. }, SenderKind::Forwarded) = (id, kind) else {
            return Ok(());
        };
        if !self.enforcer.enabled {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let history = self.enforcer.cache.restrictions();
        let per_hour = self.cfg.limits.unregistered_domain_messages_per_hour;
        match outguard_policy::admit_unregistered(
            &*self.enforcer.counters,
            tenant,
            per_hour,
            &history,
            now,
        )
        .await
        {
            Ok(UnregisteredDecision::Admit(r)) => {
                txn.reservations.push(r);
                Ok(())
            }
            Ok(UnregisteredDecision::Refuse { refusal, action }) => {
                tracing::info!(%tenant, detail = %refusal.detail, "unregistered-domain allowance exceeded");
                if let Some(a) = action {
                    // The tenant's default policy names who is notified.
                    let (_, eff) = self.effective(tenant, "").await;
                    self.take_action(a, &eff).await;
                }
                Err(reply_of(&refusal.reject))
            }
            Err(e) => {
                tracing::error!(error = %e, "counter store failed counting unregistered domains");
                Err(counter_trouble())
            }
        }
    }
}
