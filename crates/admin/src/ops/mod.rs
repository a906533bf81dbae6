//! Management actions, each written once with its authority and audit (STYLE "ops"): the admin
//! API handlers, the web UI's forms, the CLI on the store (which acts as the operator) and,
//! through the API, the CLI with `--server` all call these, so a rule of SPEC §9 "What a tenant
//! admin may change" is checked in one place whatever the interface, and one change leaves the
//! same audit entry (action, target, detail) whoever makes it; only the actor differs
//! (`token:<id>` or `cli`). The interfaces keep what is theirs: parsing input, choosing the
//! tenant a tenant role means by default, printing or serialising the answer.
//!
//! Each action takes the [`Actor`] (role, tenant scope, audit name) and returns the record or a
//! typed [`OpsError`], which every interface maps the same way: `Invalid` → HTTP 422 / exit 64,
//! `Forbidden` → 403, `NotFound` → 404, `Conflict` → 409, `Unavailable` → 503 / exit 69.
//! Messages never name another tenant or its objects.

pub mod accounts;
pub mod alerts;
pub mod compliance;
pub mod connectors;
pub mod domains;
pub mod fbl;
pub mod policies;
pub mod queue;
pub mod reputation;
pub mod restricted;
pub mod simulate;
pub mod suppressions;
pub mod tenants;
pub mod tokens;
pub mod verify;
pub mod webhooks;

use outguard_store::StoreError;
use outguard_types::model::Role;

/// Who acts: the role decides the rules; `name` and `ip` go to the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub role: Role,
    /// The one tenant a tenant role may act on (`None` for operators).
    pub tenant: Option<String>,
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    /// The CLI working on the store: whoever can open the store is the operator.
    pub fn cli() -> Actor {
        Actor {
            role: Role::Operator,
            tenant: None,
            name: "cli".into(),
            ip: None,
        }
    }

    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// Readers change nothing.
    fn require_write(&self) -> Result<(), OpsError> {
        match self.role {
            Role::TenantReader => Err(OpsError::Forbidden(
                "a tenant_reader token cannot change anything".into(),
            )),
            Role::Operator | Role::TenantAdmin => Ok(()),
        }
    }

    /// Operator-only actions (tenants, tokens, the service's own settings).
    fn require_operator(&self) -> Result<(), OpsError> {
        match self.role {
            Role::Operator => Ok(()),
            Role::TenantAdmin | Role::TenantReader => {
                Err(OpsError::Forbidden("this needs an operator token".into()))
            }
        }
    }

    /// A tenant role acts on its own tenant only; another reads like a missing one.
    fn require_tenant(&self, tenant: &str) -> Result<(), OpsError> {
        match (&self.role, &self.tenant) {
            (Role::Operator, _) => Ok(()),
            (_, Some(own)) if own == tenant => Ok(()),
            _ => Err(OpsError::NotFound(format!("tenant {tenant} not found"))),
        }
    }

    /// Whether an object of `tenant` is visible to this actor.
    fn sees(&self, tenant: &str) -> bool {
        self.is_operator() || self.tenant.as_deref() == Some(tenant)
    }

    /// Whether an object that may have no tenant (service-wide: alerts, webhooks, mail without
    /// a tenant) is visible: those are the operator's only.
    fn sees_opt(&self, tenant: Option<&str>) -> bool {
        self.is_operator() || (tenant.is_some() && self.tenant.as_deref() == tenant)
    }

    async fn audit(
        &self,
        store: &outguard_store::Store,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), OpsError> {
        store
            .audit(
                &self.name,
                action,
                target,
                detail,
                self.ip.as_deref(),
                outguard_types::time::now_ms(),
            )
            .await?;
        Ok(())
    }
}

/// Why a management action was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The input breaks a rule (422 / exit 64).
    #[error("{0}")]
    Invalid(String),
    /// The actor's role may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such object, or not the actor's (404).
    #[error("{0}")]
    NotFound(String),
    /// Collides with an existing object (409); never names its owner.
    #[error("{0}")]
    Conflict(String),
    /// A dependency (DNS) could not answer; try again (503 / exit 69).
    #[error("{0}")]
    Unavailable(String),
    /// Something of ours failed that the caller cannot fix (the spool, a task): 500 / exit 1.
    #[error("{0}")]
    Internal(String),
    /// The records store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> OpsError {
        match e {
            StoreError::Invalid { what } => OpsError::Invalid(what),
            StoreError::Conflict { what } => OpsError::Conflict(what),
            e @ StoreError::NotFound { .. } => OpsError::NotFound(e.to_string()),
            e @ (StoreError::Backend(_) | StoreError::SchemaNewer { .. }) => OpsError::Store(e),
        }
    }
}
