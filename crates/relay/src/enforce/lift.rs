//! Lifting restrictions (SPEC §3), shared by the CLI (`outguard restricted lift`) and the admin
//! API/UI (`POST /api/v1/restricted/{address}/lift`), the I/O half: the `max_unblocks_per_day`
//! in force for a subject, today's lifts, and writing the lift records and the audit entry. The
//! rules (which subject an address names, whose mail is whose, `check_lift` for each, the audit
//! text) are `outguard_policy::lift`'s. Each lift bumps the store's restriction version, so every running node
//! notices it at its next poll. Releasing held mail is the caller's step (the CLI owns the spool
//! directly, the server goes through its queue handle); [`belongs_to`] says which mail is whose.

use outguard_policy::lift::{lift_audit, lift_each, sent_by};
use outguard_policy::restriction::LiftRefused;
use outguard_policy::{Restriction, Subject};
use outguard_store::spool::Envelope;
use outguard_store::{Store, StoreError, StoredRestriction};
use outguard_types::config::Config;
use outguard_types::model::{Millis, Role};

pub use outguard_policy::lift::parse_subject;

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

/// Whether a queued message belongs to the subject.
pub fn belongs_to(env: &Envelope, subject: &Subject) -> bool {
    sent_by(subject, &env.submitter, env.tenant.as_deref())
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
    let records: Vec<&Restriction> = active.iter().map(|s| &s.restriction).collect();
    let lifts = lift_each(&records, who.role, done_today, max, who.actor, reason, now).map_err(
        |refused| LiftError::Refused {
            subject: subject.id().to_string(),
            refused,
        },
    )?;
    let mut lifted = Vec::new();
    for (s, r) in active.iter().zip(lifts) {
        store.update_restriction(&s.id, &r).await?;
        lifted.push(StoredRestriction {
            id: s.id.clone(),
            restriction: r,
        });
    }
    let ids: Vec<&str> = lifted.iter().map(|s| s.id.as_str()).collect();
    let (target, detail) = lift_audit(&subject, &ids, reason);
    store
        .audit(who.actor, "restricted.lift", &target, &detail, who.ip, now)
        .await?;
    Ok(lifted)
}
