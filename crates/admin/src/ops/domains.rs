//! Domain management (SPEC §9): domains are proven, not claimed. A tenant admin's new domain is
//! `pending` with a token; it becomes usable for sending once the TXT record
//! `outguard-verify=<token>` is found at the domain ([`verify`] on demand, and the periodic pass
//! in [`super::verify`]). An operator's domain (and the CLI's on the store) is verified at once,
//! and an operator's `verify` verifies directly.
//!
//! Nesting across tenants: a tenant admin may not claim a subdomain *or a parent* of another
//! tenant's verified domain. The subdomain case is the obvious impersonation
//! (`mail.globex.example`); the parent case matters too, because relaxed DMARC alignment and
//! mailbox providers' reputation work on the organisational domain, so the parent's owner would
//! share — and could spoil — the other tenant's standing. The rule is checked again when a
//! pending domain is verified, since another tenant may have verified a relative meanwhile.
//! Every such refusal reads `domain is not available`, naming no one.

use outguard_store::{Store, normalize_domain};
use outguard_types::model::{Domain, DomainStatus};
use rand::Rng as _;

use super::verify::{Proof, TxtResolver, record_text};
use super::{Actor, OpsError};

fn not_available(domain: &str) -> OpsError {
    OpsError::Conflict(format!("domain {domain} is not available"))
}

/// A fresh verification token: 128 random bits, hex.
fn new_token() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuse when another tenant's verified domain is a parent or subdomain of `domain`.
async fn check_nesting(store: &Store, tenant: &str, domain: &str) -> Result<(), OpsError> {
    let related = store.related_domains(domain).await?;
    if related
        .iter()
        .any(|d| d.tenant != tenant && d.status == DomainStatus::Verified)
    {
        return Err(not_available(domain));
    }
    Ok(())
}

/// Accept a domain for `tenant`: verified at once for an operator, pending for a tenant admin.
pub async fn add(
    store: &Store,
    actor: &Actor,
    tenant: &str,
    domain: &str,
) -> Result<Domain, OpsError> {
    actor.require_write()?;
    actor.require_tenant(tenant)?;
    let domain = normalize_domain(domain)?;
    if store.tenant_of_domain(&domain).await?.is_some() {
        return Err(not_available(&domain));
    }
    let d = if actor.is_operator() {
        store.add_domain(tenant, &domain).await?
    } else {
        check_nesting(store, tenant, &domain).await?;
        store
            .add_pending_domain(tenant, &domain, &new_token())
            .await?
    };
    let detail = format!("tenant {tenant}, {}", d.status.as_str());
    actor.audit(store, "domain.add", &d.domain, &detail).await?;
    Ok(d)
}

/// The domain `name`, if the actor may see it (another tenant's reads as missing).
pub async fn find(store: &Store, actor: &Actor, name: &str) -> Result<Domain, OpsError> {
    match store.domain(name).await? {
        Some(d) if actor.sees(&d.tenant) => Ok(d),
        _ => Err(OpsError::NotFound(format!("domain {name} not found"))),
    }
}

/// Check a pending domain's TXT record and verify it when found (also the periodic pass).
pub(super) async fn prove(
    store: &Store,
    dns: &TxtResolver,
    actor: &Actor,
    d: &Domain,
) -> Result<(), OpsError> {
    let Some(token) = d.verification_token.as_deref() else {
        return Err(OpsError::Invalid(format!(
            "domain {} has no verification token",
            d.domain
        )));
    };
    check_nesting(store, &d.tenant, &d.domain).await?;
    match dns.proof(&d.domain, token).await {
        Proof::Found => {}
        Proof::Missing => {
            return Err(OpsError::Invalid(format!(
                "no TXT record \"{}\" found at {} yet; publish it and try again",
                record_text(token),
                d.domain
            )));
        }
        Proof::Unknown(why) => {
            return Err(OpsError::Unavailable(format!(
                "DNS lookup of {} failed ({why}); try again later",
                d.domain
            )));
        }
    }
    store.mark_domain_verified(&d.domain).await?;
    actor
        .audit(store, "domain.verify", &d.domain, "TXT record found")
        .await
}

/// Verify a domain: an operator directly, a tenant admin by its DNS TXT record (`dns` is only
/// needed then). A verified domain answers as it is.
pub async fn verify(
    store: &Store,
    dns: Option<&TxtResolver>,
    actor: &Actor,
    name: &str,
) -> Result<Domain, OpsError> {
    let d = find(store, actor, name).await?;
    actor.require_write()?;
    if d.status == DomainStatus::Verified {
        return Ok(d);
    }
    if actor.is_operator() {
        store.mark_domain_verified(&d.domain).await?;
        actor
            .audit(store, "domain.verify", &d.domain, "verified by an operator")
            .await?;
    } else {
        let dns = dns.ok_or_else(|| OpsError::Unavailable("no DNS resolver to ask".into()))?;
        prove(store, dns, actor, &d).await?;
    }
    find(store, actor, &d.domain).await
}

/// Withdraw a domain no account uses.
pub async fn remove(store: &Store, actor: &Actor, name: &str) -> Result<Domain, OpsError> {
    let d = find(store, actor, name).await?;
    actor.require_write()?;
    store.remove_domain(&d.domain).await?;
    actor.audit(store, "domain.remove", &d.domain, "").await?;
    Ok(d)
}
