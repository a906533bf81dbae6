//! Who is calling: `Authorization: Bearer <token>` resolved through the store on every request
//! (no cache, so a revoked token stops working at once), the caller's role and tenant scope,
//! and the audit record every mutating call leaves (who, what, target, client IP).
//!
//! Scope rules (SPEC §5): an operator sees every tenant; a tenant role sees only its own tenant,
//! and another tenant's object answers 404 exactly like a missing one, so ids cannot be probed.
//! A tenant reader gets 403 on every mutation; operator-only resources answer tenant roles 403.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use outguard_types::model::{Role, TokenInfo};

use super::AppState;
use super::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: TokenInfo,
    pub ip: Option<String>,
}

impl Caller {
    /// `None` for operators (every tenant), else the one tenant the caller may see.
    pub fn scope(&self) -> Option<&str> {
        match self.token.role {
            Role::Operator => None,
            Role::TenantAdmin | Role::TenantReader => {
                Some(self.token.tenant.as_deref().unwrap_or(""))
            }
        }
    }

    /// Whether an object of `tenant` is visible (objects without a tenant are operator-only).
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match self.scope() {
            None => true,
            Some(own) => tenant == Some(own),
        }
    }

    /// 404 unless the object is visible (another tenant's object looks missing).
    pub fn check_visible(&self, tenant: Option<&str>, what: &str) -> Result<(), ApiError> {
        if self.sees(tenant) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("{what} not found")))
        }
    }

    /// 403 for readers.
    pub fn require_write(&self) -> Result<(), ApiError> {
        match self.token.role {
            Role::TenantReader => Err(ApiError::forbidden(
                "a tenant_reader token cannot change anything",
            )),
            Role::Operator | Role::TenantAdmin => Ok(()),
        }
    }

    /// 403 for tenant roles.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self.token.role {
            Role::Operator => Ok(()),
            _ => Err(ApiError::forbidden("this needs an operator token")),
        }
    }

    /// The tenant a create call acts on: a tenant role's own tenant (naming another is 404), an
    /// operator's explicit choice (required).
    pub fn target_tenant(&self, asked: Option<&str>) -> Result<String, ApiError> {
        match (self.scope(), asked) {
            (Some(own), None) => Ok(own.to_string()),
            (Some(own), Some(t)) if t == own => Ok(own.to_string()),
            (Some(_), Some(t)) => Err(ApiError::not_found(format!("tenant {t} not found"))),
            (None, Some(t)) => Ok(t.to_string()),
            (None, None) => Err(ApiError::invalid("tenant is required")),
        }
    }

    /// The list filter: a tenant role always gets its own tenant; asking for another is 404.
    pub fn list_scope(&self, asked: Option<&str>) -> Result<Option<String>, ApiError> {
        match (self.scope(), asked) {
            (None, a) => Ok(a.map(str::to_string)),
            (Some(own), None) => Ok(Some(own.to_string())),
            (Some(own), Some(t)) if t == own => Ok(Some(own.to_string())),
            (Some(_), Some(t)) => Err(ApiError::not_found(format!("tenant {t} not found"))),
        }
    }

    /// This caller as the management layer's actor (role, scope, audit name).
    pub fn ops_actor(&self) -> crate::ops::Actor {
        crate::ops::Actor {
            role: self.token.role,
            tenant: self.scope().map(str::to_string),
            name: self.actor(),
            ip: self.ip.clone(),
        }
    }

    /// The audit actor name: `token:<id>`.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token.id)
    }

    /// Records a mutation; a failing audit write fails the call (an unaudited change must not
    /// look successful).
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), ApiError> {
        state
            .relay
            .store
            .audit(
                &self.actor(),
                action,
                target,
                detail,
                self.ip.as_deref(),
                state.relay.clock.now_ms(),
            )
            .await?;
        Ok(())
    }
}

/// The client IP of a request, when the server recorded it (absent in in-process tests).
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Resolves a bearer secret; unknown or revoked is 401.
pub async fn resolve(state: &AppState, secret: &str) -> Result<TokenInfo, ApiError> {
    state
        .relay
        .store
        .token_by_secret(secret)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        let token = resolve(state, secret).await?;
        Ok(Caller {
            token,
            ip: client_ip(parts),
        })
    }
}
