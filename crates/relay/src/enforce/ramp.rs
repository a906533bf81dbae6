//! The trust ramp at RCPT (issue 25, `[trust_ramp]`): an account younger than `days` since its
//! creation or the end of its latest restriction gets a fraction of its recipient limits
//! (`outguard_policy::ramp`). The account's creation time is read from the store only while the
//! ramp is on; the ramp is named in the transaction's measures, so the trace shows it.

use outguard_policy::Restriction;
use outguard_policy::ramp::{Ramp, history_start, ramp};
use outguard_policy::restriction::Subject;
use outguard_types::model::Millis;

use crate::server::Relay;
use crate::smtp::identity::Identity;

impl Relay {
    /// The ramp that applies to `id` now; `None` for connectors, old accounts, or when off.
    pub(super) async fn trust_ramp(
        &self,
        id: &Identity,
        history: &[Restriction],
        now: Millis,
    ) -> Option<Ramp> {
        let cfg = &self.cfg.trust_ramp;
        let Identity::Account { address, .. } = id else {
            return None;
        };
        if !cfg.enabled {
            return None;
        }
        let created = match self.store.account(address).await {
            Ok(Some(a)) => a.created_at,
            Ok(None) => return None,
            Err(e) => {
                // The limits stay the policy's: a store hiccup must not refuse mail.
                tracing::warn!(error = %e, "cannot read the account for the trust ramp");
                return None;
            }
        };
        let start = history_start(created, history, &Subject::Account(address.clone()));
        ramp(start, now, cfg.start_percent, cfg.days)
    }
}
