//! The submission checks the session delegates (SPEC §2.1–2.2): who may authenticate, who may
//! use which envelope sender and `From:` header, which recipients a transaction may have. Each
//! returns `Ok` or the exact refusal as a [`Reply`] value.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use outguard_proto::Reply;
use outguard_proto::sasl::Credentials;
use outguard_types::model::Millis;

use super::auth_limit::Locked;
use super::identity::{Identity, domain_of};
use crate::server::Relay;

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
    /// AUTH: the guessing bounds per client address and per account (SPEC §9), then the store's
    /// (cached) password check. A success clears no failure count (see `auth_limit`).
    pub async fn check_auth(&self, ip: IpAddr, creds: &Credentials) -> Result<Identity, Reply> {
        let now = self.clock.now_ms();
        if let Err(locked) = self.auth_limiter.check(ip, &creds.username, now) {
            return Err(locked.reply());
        }
        if !creds.authzid.is_empty() && !creds.authzid.eq_ignore_ascii_case(&creds.username) {
            self.auth_failed(ip, &creds.username, now);
            return Err(Reply::auth_failed());
        }
        match self
            .store
            .verify_password(&creds.username, &creds.password)
            .await
        {
            Ok(Some(acct)) => Ok(acct.into()),
            Ok(None) => {
                self.auth_failed(ip, &creds.username, now);
                Err(Reply::auth_failed())
            }
            Err(e) => {
                tracing::error!(error = %e, "store error during AUTH");
                Err(Reply::new(454, "4.7.0", "Temporary authentication failure"))
            }
        }
    }

    fn auth_failed(&self, ip: IpAddr, user: &str, now: Millis) {
        tracing::info!(%ip, user = %user, "authentication failed");
        match self.auth_limiter.record_failure(ip, user, now) {
            Some(Locked::Ip) => tracing::warn!(%ip, "AUTH locked for this address"),
            Some(Locked::Account) => {
                tracing::warn!(%ip, user = %user, "AUTH locked for this account")
            }
            None => {}
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
    /// forwarded mail they must at least not be another tenant's. The store is asked once per
    /// distinct domain, not per address (the `From:` rule already capped them at 100).
    pub async fn check_header_from(
        &self,
        id: &Identity,
        kind: &SenderKind,
        from_addrs: &[String],
    ) -> Result<(), Reply> {
        let Some(domains) = distinct_domains(from_addrs) else {
            return Err(Reply::malformed_message("Malformed From: header address"));
        };
        let mut owners: BTreeMap<String, Option<String>> = BTreeMap::new();
        for domain in domains {
            let owner = self.owner_of(&domain).await?;
            owners.insert(domain, owner);
        }
        for addr in from_addrs {
            let owner = domain_of(addr)
                .and_then(|d| owners.get(&d.to_ascii_lowercase()))
                .and_then(Option::as_deref);
            if !header_from_allowed(id, kind, owner, addr) {
                return Err(Reply::sender_not_owned());
            }
        }
        Ok(())
    }

    /// RCPT for the fbl listener: the configured report domains, and our SRS addresses (bounces
    /// of forwarded mail, `crate::srs`).
    pub fn check_fbl_rcpt(&self, to: &str) -> Result<(), Reply> {
        if self.is_srs_rcpt(to) {
            return self.check_srs_rcpt(to);
        }
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

/// May this submitter put `addr` (whose domain belongs to tenant `owner`) in `From:`?
fn header_from_allowed(id: &Identity, kind: &SenderKind, owner: Option<&str>, addr: &str) -> bool {
    match id {
        Identity::Account { tenant, .. } => owner == Some(tenant.as_str()) && id.may_send_as(addr),
        Identity::Connector { tenant, .. } => match kind {
            SenderKind::Owned | SenderKind::Null => owner == Some(tenant.as_str()),
            SenderKind::Forwarded => owner.is_none() || owner == Some(tenant.as_str()),
        },
        Identity::FeedbackLoop => true,
        Identity::None => false,
    }
}

/// The distinct domains (lowercased) of `addrs`, each once: what the store is asked about.
/// `None` when an address has no domain.
fn distinct_domains(addrs: &[String]) -> Option<BTreeSet<String>> {
    addrs
        .iter()
        .map(|a| domain_of(a).map(str::to_ascii_lowercase))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_is_asked_once_per_domain() {
        let v = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let many: Vec<String> = (0..100)
            .map(|i| format!("u{i}@{}.example", ["a", "A", "b"][i % 3]))
            .collect();
        let cases: &[(Vec<String>, Option<Vec<&str>>)] = &[
            (many, Some(vec!["a.example", "b.example"])),
            (v(&["x@a.example"]), Some(vec!["a.example"])),
            (v(&["x@a.example", "nodomain"]), None),
            (v(&[]), Some(vec![])),
        ];
        for (addrs, want) in cases {
            let got = distinct_domains(addrs).map(|d| d.into_iter().collect::<Vec<_>>());
            assert_eq!(
                got,
                want.as_ref()
                    .map(|w| w.iter().map(|s| s.to_string()).collect())
            );
        }
    }

    #[test]
    fn header_from_rules() {
        let acct = Identity::Account {
            address: "alice@a.example".into(),
            tenant: "a".into(),
            send_as: vec![],
        };
        let conn = Identity::Connector {
            cidr: "127.0.0.0/8".into(),
            tenant: "a".into(),
            limit_per_hour: None,
            forwarding: true,
        };
        use SenderKind::*;
        for (id, kind, owner, addr, ok) in [
            (&acct, &Owned, Some("a"), "alice@a.example", true),
            (&acct, &Owned, Some("a"), "bob@a.example", false),
            (&acct, &Owned, Some("b"), "alice@a.example", false),
            (&conn, &Owned, Some("a"), "anyone@a.example", true),
            (&conn, &Owned, Some("b"), "carol@b.example", false),
            (&conn, &Forwarded, None, "x@elsewhere.example", true),
            (&conn, &Forwarded, Some("b"), "carol@b.example", false),
            (&Identity::None, &Owned, Some("a"), "alice@a.example", false),
        ] {
            assert_eq!(
                header_from_allowed(id, kind, owner, addr),
                ok,
                "{addr} {owner:?}"
            );
        }
    }
}
