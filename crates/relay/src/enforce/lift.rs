//! Lifting restrictions (SPEC §3), shared by the CLI (`outguard restricted lift`) and the admin
//! API/UI (`POST /api/v1/restricted/{address}/lift`): which subject an address names, the
//! `max_unblocks_per_day` in force for it, the role rules of `check_lift`, the lift records and
//! the audit entry. Each lift bumps the store's restriction version, so every running node
//! notices it at its next poll. Releasing held mail is the caller's step (the CLI owns the spool
//! directly, the server goes through its queue handle); [`belongs_to`] says which mail is whose.

use ipnet::IpNet;
use outguard_policy::restriction::{LiftRefused, check_lift, lift};
use outguard_policy::{Restriction, Subject};
use outguard_store::spool::Envelope;
use outguard_store::{Store, StoreError, StoredRestriction};
use outguard_types::config::Config;
use outguard_types::model::{Millis, Role, Submitter};

/// Why a lift did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LiftError {
    #[error("no active restriction of {0}")]
    NotFound(String),
    #[error("{subject}: {refused}")]
    Refused {
        subject: String,
        refused: LiftRefused,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who lifts: the role decides the rules, `actor` and `ip` go to the records and audit log.
#[derive(Debug, Clone, Copy)]
pub struct Lifter<'a> {
    pub role: Role,
    pub actor: &'a str,
    pub ip: Option<&'a str>,
}

/// `user@domain` → account; an IP or CIDR → connector (normalised like the store does);
/// anything else → tenant.
pub fn parse_subject(s: &str) -> Subject {
    let s = s.trim();
    if s.contains('@') {
        return Subject::Account(s.to_string());
    }
    let net = s
        .parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from));
    match net {
        Some(n) => Subject::Connector(n.trunc().to_string()),
        None => Subject::Tenant(s.to_string()),
    }
}

/// Whether a queued message belongs to the subject.
pub fn belongs_to(env: &Envelope, subject: &Subject) -> bool {
    match subject {
        Subject::Account(a) => {
            matches!(&env.submitter, Submitter::Account(x) if x.eq_ignore_ascii_case(a))
        }
        Subject::Connector(c) => matches!(&env.submitter, Submitter::Connector(x) if x == c),
        Subject::Tenant(t) => env.tenant.as_deref() == Some(t.as_str()),
    }
}

/// `max_unblocks_per_day` of the policy in force for the restricted subject.
pub async fn max_unblocks(cfg: &Config, store: &Store, r: &Restriction) -> Result<u32, StoreError> {
    let policies = store.list_policies(&r.tenant).await?;
    let default = store.tenant_default(&r.tenant).await?;
    let sender = match &r.subject {
        Subject::Account(a) => a.as_str(),
        Subject::Connector(_) | Subject::Tenant(_) => "",
    };
    let (_, eff) = outguard_policy::effective_for(&policies, &default, &cfg.policy.default, sender);
    Ok(eff.max_unblocks_per_day)
}

/// Lifts every active restriction in `active` (all of one subject, as
/// `Store::active_restrictions_of` returns them) after `check_lift` allowed each, then audits
/// one `restricted.lift` entry. Nothing is written when the first check refuses.
pub async fn lift_all(
    cfg: &Config,
    store: &Store,
    active: &[StoredRestriction],
    who: Lifter<'_>,
    reason: &str,
    now: Millis,
) -> Result<Vec<StoredRestriction>, LiftError> {
    let Some(first) = active.first() else {
        return Err(LiftError::NotFound(String::new()));
    };
    let subject = first.restriction.subject.clone();
    let max = max_unblocks(cfg, store, &first.restriction).await?;
    let done_today = store.lifts_today(&subject, now).await?;
    // Check them all before writing any, so a refusal leaves nothing half-lifted.
    for (i, s) in active.iter().enumerate() {
        check_lift(
            &s.restriction,
            who.role,
            done_today + i as u32,
            max,
            reason,
            now,
        )
        .map_err(|refused| LiftError::Refused {
            subject: subject.id().to_string(),
            refused,
        })?;
    }
    let mut lifted = Vec::new();
    for s in active {
        let r = lift(&s.restriction, who.actor, reason, now);
        store.update_restriction(&s.id, &r).await?;
        lifted.push(StoredRestriction {
            id: s.id.clone(),
            restriction: r,
        });
    }
    let ids: Vec<&str> = lifted.iter().map(|s| s.id.as_str()).collect();
    let detail = format!("{} (restrictions {})", reason.trim(), ids.join(", "));
    // Account addresses compare case-insensitively; the audit names them in lower case.
    let target = match &subject {
        Subject::Account(a) => a.to_ascii_lowercase(),
        other => other.id().to_string(),
    };
    store
        .audit(who.actor, "restricted.lift", &target, &detail, who.ip, now)
        .await?;
    Ok(lifted)
}
