//! Lifting restrictions (SPEC §3): the actor sees only its tenant's restrictions, a lift needs a
//! reason without control characters, and `outguard_relay::enforce::lift::lift_all` applies the
//! role rules (`check_lift`: a tenant admin within `max_unblocks_per_day`, only an operator
//! lifts a tenant, readers nothing) and writes the one `restricted.lift` audit entry. Releasing
//! the held mail as well goes through [`super::queue::release_held`], each release audited.

use outguard_policy::restriction::LiftRefused;
use outguard_relay::enforce::lift::{LiftError, Lifter, lift_all, parse_subject};
use outguard_store::{Store, StoredRestriction};
use outguard_types::config::Config;
use outguard_types::model::Millis;

use super::queue::{Queue, release_held};
use super::{Actor, OpsError};

/// What a lift did.
#[derive(Debug, Clone)]
pub struct Lifted {
    /// The restriction records as lifted.
    pub lifted: Vec<StoredRestriction>,
    /// Ids of the held messages released (when asked).
    pub released: Vec<String>,
}

impl From<LiftError> for OpsError {
    fn from(e: LiftError) -> OpsError {
        match e {
            LiftError::NotFound(what) => {
                OpsError::NotFound(format!("no active restriction {what}"))
            }
            LiftError::Store(e) => e.into(),
            LiftError::Refused { refused, .. } => {
                let m = refused.to_string();
                match refused {
                    LiftRefused::NoReason => OpsError::Invalid(m),
                    LiftRefused::OperatorOnly
                    | LiftRefused::ReadOnly
                    | LiftRefused::TooManyLifts { .. } => OpsError::Forbidden(m),
                    LiftRefused::NotActive => OpsError::Conflict(m),
                }
            }
        }
    }
}

/// Lift every active restriction of `address` (account address, connector CIDR or tenant name)
/// the actor may see; with `release`, also release the subject's held mail through it.
pub async fn lift<Q: Queue>(
    cfg: &Config,
    store: &Store,
    actor: &Actor,
    address: &str,
    reason: &str,
    release: Option<&Q>,
    now: Millis,
) -> Result<Lifted, OpsError> {
    let reason = reason.trim();
    outguard_types::text::check_no_control("reason", reason).map_err(OpsError::Invalid)?;
    let subject = parse_subject(address);
    let active: Vec<StoredRestriction> = store
        .active_restrictions_of(&subject, now)
        .await?
        .into_iter()
        .filter(|r| actor.sees(&r.restriction.tenant))
        .collect();
    if active.is_empty() {
        return Err(OpsError::NotFound(format!(
            "no active restriction of {address} found"
        )));
    }
    actor.require_write()?;
    if reason.is_empty() {
        return Err(OpsError::Invalid("reason: a lift needs a reason".into()));
    }
    let who = Lifter {
        role: actor.role,
        actor: &actor.name,
        ip: actor.ip.as_deref(),
    };
    let lifted = lift_all(cfg, store, &active, who, reason, now).await?;
    let released = match release {
        Some(q) => release_held(store, actor, q, &subject).await?,
        None => Vec::new(),
    };
    Ok(Lifted { lifted, released })
}
