//! The trust ramp at RCPT (issue 25, `[trust_ramp]`): an account younger than `days` since its
//! creation, the end of its latest restriction or its latest setback (spam verdict, trusted
//! complaint, hard bounce: [`Relay::ramp_setback`]) gets a fraction of its recipient limits
//! (`outguard_policy::ramp`). The account's creation time and setback are read only while the
//! ramp is on; the ramp is named in the transaction's measures, so the trace shows it.

use outguard_policy::Restriction;
use outguard_policy::ramp::{Ramp, history_start, last_setback, note_setback, ramp};
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
        self.ramp_from(address, created, history, now).await
    }

    /// Where the account created at `created` stands on the ramp now (for the admin API and
    /// UI as for RCPT); `None` when the ramp is off or the account is past it.
    pub async fn account_ramp(&self, address: &str, created: Millis, now: Millis) -> Option<Ramp> {
        if !self.cfg.trust_ramp.enabled {
            return None;
        }
        let history = self.enforcer.cache.restrictions();
        self.ramp_from(address, created, &history, now).await
    }

    async fn ramp_from(
        &self,
        address: &str,
        created: Millis,
        history: &[Restriction],
        now: Millis,
    ) -> Option<Ramp> {
        let cfg = &self.cfg.trust_ramp;
        let mut start = history_start(created, history, &Subject::Account(address.to_string()));
        match last_setback(&*self.enforcer.signals, address, now).await {
            Ok(Some(at)) => start = start.max(at),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the trust ramp's latest setback"),
        }
        ramp(start, now, cfg.start_percent, cfg.days)
    }

    /// Restart `account`'s ramp at `now` (a message called spam, a trusted complaint or hard
    /// bounce). Nothing while the ramp is off.
    pub(crate) async fn ramp_setback(&self, account: &str, now: Millis) {
        let cfg = &self.cfg.trust_ramp;
        if !cfg.enabled {
            return;
        }
        if let Err(e) = note_setback(&*self.enforcer.signals, account, cfg.days, now).await {
            tracing::warn!(error = %e, account, "cannot restart the trust ramp");
        }
    }
}
