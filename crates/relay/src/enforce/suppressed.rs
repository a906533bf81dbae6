//! RCPT to a suppressed recipient (issue 25): the tenant's suppression list in the store (one
//! indexed lookup per RCPT), `550 5.1.1` naming the suppression, and one more refused send in
//! the sender's count for the `SENT_TO_SUPPRESSED` signal. The list itself is filled by the
//! bounce watcher (`crate::fbl::bounces`) and by admins.

use outguard_policy::SenderRef;
use outguard_proto::Reply;
use outguard_types::model::Millis;

use super::reply_of;
use crate::server::Relay;

impl Relay {
    /// `Err(550 5.1.1)` when `to` is suppressed for `tenant`; `451` when the store cannot tell.
    pub(super) async fn check_suppressed(
        &self,
        sender: &SenderRef<'_>,
        tenant: &str,
        to: &str,
        now: Millis,
    ) -> Result<(), Reply> {
        let s = match self.store.suppression(tenant, to, now).await {
            Ok(None) => return Ok(()),
            Ok(Some(s)) => s,
            Err(e) => {
                tracing::error!(error = %e, "store error during suppression check");
                return Err(Reply::temp_failure(
                    "Temporary failure checking the recipient, try again later",
                ));
            }
        };
        let subject = sender.subject();
        match outguard_policy::suppress::note_refused(&*self.enforcer.signals, &subject, now).await
        {
            Ok(n) => tracing::info!(
                sender = subject.id(),
                %tenant,
                rcpt = %s.recipient,
                refused_24h = n,
                "recipient suppressed"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot count a send to a suppressed recipient"),
        }
        Err(reply_of(&outguard_policy::suppress::reject(
            &s.recipient,
            s.until,
        )))
    }
}
