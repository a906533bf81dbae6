//! The submission checks the session delegates (SPEC §2.1–2.2): who may authenticate, who may
//! use which envelope sender and `From:` header, which recipients a transaction may have. Each
//! returns `Ok` or the exact refusal as a [`Reply`] value.

use std::net::IpAddr;

use outguard_proto::Reply;
use outguard_proto::sasl::Credentials;

use super::identity::{Identity, domain_of};
use crate::server::Relay;
use crate::trace::now_ms;

/// What the transaction's envelope sender turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderKind {
    /// In one of the submitter's tenant's verified domains.
    Owned,
    /// Null sender `<>` from a connector (its own NDRs): allowed, leaves from high-risk.
    Null,
    /// A `forwarding` connector relaying mail whose sender is in no tenant's verified domain:
    /// relay pool + SRS, within the tenant's unregistered-domain allowance.
    Forwarded,
}

impl Relay {
    /// AUTH: lockout per client IP, then the store's (cached) password check.
    pub async fn check_auth(&self, ip: IpAddr, creds: &Credentials) -> Result<Identity, Reply> {
        let now = now_ms();
        if self.auth_limiter.is_locked(ip, now) {
            return Err(Reply::auth_locked());
        }
        if !creds.authzid.is_empty() && !creds.authzid.eq_ignore_ascii_case(&creds.username) {
            self.auth_limiter.record_failure(ip, now);
            return Err(Reply::auth_failed());
        }
        match self
            .store
            .verify_password(&creds.username, &creds.password)
            .await
        {
            Ok(Some(acct)) => {
                self.auth_limiter.record_success(ip);
                Ok(Identity::Account {
                    address: acct.address,
                    tenant: acct.tenant,
                    send_as: acct.send_as,
                })
            }
            Ok(None) => {
                self.auth_limiter.record_failure(ip, now);
                tracing::info!(%ip, user = %creds.username, "authentication failed");
                Err(Reply::auth_failed())
            }
            Err(e) => {
                tracing::error!(error = %e, "store error during AUTH");
                Err(Reply::new(454, "4.7.0", "Temporary authentication failure"))
            }
        }
    }

    /// The tenant whose *verified* domain this is (a pending claim owns nothing, SPEC §9), or a
    /// 451 when the store cannot answer.
    async fn owner_of(&self, domain: &str) -> Result<Option<String>, Reply> {
        self.store
            .verified_tenant_of_domain(&domain.to_ascii_lowercase())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "store error during sender check");
                Reply::temp_failure("Temporary failure checking the sender, try again later")
            })
    }

    /// MAIL FROM: the envelope sender must be the submitter's own (SPEC §2.1, §9): in one of its
    /// tenant's verified domains. One tenant can never send as another tenant's domain; only a
    /// `forwarding` connector may relay mail from domains nobody verified.
    pub async fn check_sender(&self, id: &Identity, from: &str) -> Result<SenderKind, Reply> {
        match id {
            Identity::None => Err(Reply::auth_required()),
            Identity::FeedbackLoop => Ok(SenderKind::Forwarded),
            Identity::Account { tenant, .. } => {
                let Some(domain) = domain_of(from) else {
                    return Err(Reply::sender_not_owned());
                };
                let owner = self.owner_of(domain).await?;
                if owner.as_deref() == Some(tenant) && id.may_send_as(from) {
                    Ok(SenderKind::Owned)
                } else {
                    Err(Reply::sender_not_owned())
                }
            }
            Identity::Connector {
                tenant, forwarding, ..
            } => {
                let Some(domain) = domain_of(from) else {
                    return Ok(SenderKind::Null);
                };
                match self.owner_of(domain).await? {
                    Some(t) if &t == tenant => Ok(SenderKind::Owned),
                    None if *forwarding => Ok(SenderKind::Forwarded),
                    _ => Err(Reply::sender_not_owned()),
                }
            }
        }
    }

    /// The `From:` header's addresses must obey the same ownership rule as the envelope; for
    /// forwarded mail they must at least not be another tenant's.
    pub async fn check_header_from(
        &self,
        id: &Identity,
        kind: &SenderKind,
        from_addrs: &[String],
    ) -> Result<(), Reply> {
        for addr in from_addrs {
            let Some(domain) = domain_of(addr) else {
                return Err(Reply::new(550, "5.7.1", "Malformed From: header address"));
            };
            let owner = self.owner_of(domain).await?;
            let ok = match id {
                Identity::Account { tenant, .. } => {
                    owner.as_deref() == Some(tenant) && id.may_send_as(addr)
                }
                Identity::Connector { tenant, .. } => match kind {
                    SenderKind::Owned | SenderKind::Null => owner.as_deref() == Some(tenant),
                    SenderKind::Forwarded => owner.is_none() || owner.as_deref() == Some(tenant),
                },
                Identity::FeedbackLoop => true,
                Identity::None => false,
            };
            if !ok {
                return Err(Reply::sender_not_owned());
            }
        }
        Ok(())
    }

    /// RCPT for the fbl listener: only the configured report domains.
    pub fn check_fbl_rcpt(&self, to: &str) -> Result<(), Reply> {
        let ok = domain_of(to).is_some_and(|d| {
            self.cfg
                .fbl
                .domains
                .iter()
                .any(|f| f.eq_ignore_ascii_case(d))
        });
        if ok {
            Ok(())
        } else {
            Err(Reply::new(
                550,
                "5.7.1",
                "Relaying denied: not a feedback-loop address",
            ))
        }
    }
}
