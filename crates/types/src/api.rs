//! Admin API request bodies (SPEC §6): what `POST`/`PUT` handlers deserialize and what the CLI's
//! API client (`--server`) serializes, one type for both ends. They live here, not beside the
//! handlers, so the `api_json` fuzz target can reach them; the OpenAPI schema derive is behind
//! the `openapi` feature (the binary turns it on). `Policy` and
//! `PolicySettings` bodies are in [`crate::policy`].

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    /// Required for operators; tenant roles default to (and may only name) their own.
    pub tenant: Option<String>,
    pub domain: String,
}

/// A recipient suppressed by an admin (`POST /api/v1/suppressions`, issue 25).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    /// Required for operators; tenant roles default to (and may only name) their own.
    pub tenant: Option<String>,
    pub recipient: String,
    /// Days it lasts (1–365); default `[suppression] duration`.
    #[serde(default)]
    pub days: Option<u32>,
    /// A note kept with it and in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub tenant: Option<String>,
    pub address: String,
    /// Omit to have one generated (returned once in `password`).
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendAs {
    /// `user@domain` or `@domain`.
    pub target: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewConnector {
    pub tenant: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cidr: IpNet,
    pub limit_per_hour: Option<u32>,
    /// Operators only: admit a prefix wider than IPv4 /24 or IPv6 /48.
    #[serde(default)]
    pub allow_wide: bool,
    /// Operators only: relay mail from domains the tenant has not registered (relay pool, SRS).
    #[serde(default)]
    pub forwarding: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `operator`, `tenant_admin` or `tenant_reader`.
    pub role: String,
    pub tenant: Option<String>,
}

/// A lift request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LiftRequest {
    /// Why (required, recorded on the restriction and in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
    /// Also release the subject's held messages for delivery.
    #[serde(default)]
    pub release_held: bool,
}

/// Clearing a sender's reputation (`POST /api/v1/restricted/{address}/clear-reputation`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClearReputationRequest {
    /// Why (required, recorded in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A webhook subscription (`POST /api/v1/webhooks`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Tenant roles: their own (the default). Operators: omit for every tenant's alerts and the
    /// service-wide ones.
    pub tenant: Option<String>,
    /// `https://host[:port][/path]` (or `http://`); every address of the host must be public
    /// unless the operator's `[webhooks] allow_private` opens it.
    pub url: String,
    /// At least 16 characters; omit to have one generated (returned once in `secret`).
    pub secret: Option<String>,
    /// Alert kinds to send; empty or omitted: every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
}
