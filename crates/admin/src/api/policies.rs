//! `/api/v1/policies` (SPEC §2.4, §8): a tenant's outbound spam policies. The name `default` is
//! the tenant's default settings; other names are custom policies (scope + priority +
//! settings). A PUT body is the settings object with the SPEC §8 keys; an unknown key is 422
//! naming it, an out-of-range value 422 naming the key. Writes need a tenant admin of that
//! tenant or an operator, and are audited (`ops::policies`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outguard_store::DEFAULT_POLICY;
use outguard_types::policy::{EffectivePolicy, Policy, PolicyScope, PolicySettings};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::{AppState, TenantQuery};
use crate::ops;
use crate::ops::policies::Stored;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(create))
        .routes(routes!(get_one, put_one, remove))
}

/// A policy as listed: the default has no priority or scope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyView {
    pub name: String,
    pub priority: Option<u32>,
    #[schema(value_type = Option<Object>)]
    pub scope: Option<PolicyScope>,
    /// The keys set on this policy (unset keys fall back to the tenant default, then the
    /// service default).
    #[schema(value_type = Object)]
    pub settings: PolicySettings,
}

impl From<Policy> for PolicyView {
    fn from(p: Policy) -> Self {
        PolicyView {
            name: p.name,
            priority: Some(p.priority),
            scope: Some(p.scope),
            settings: p.settings,
        }
    }
}

/// One policy with the values in force for a sender it applies to: its settings over the
/// tenant default over the server's `[policy.default]` (what `outguard policy show` prints).
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDetail {
    #[serde(flatten)]
    pub policy: PolicyView,
    #[schema(value_type = Object)]
    pub effective: EffectivePolicy,
}

fn default_view(settings: PolicySettings) -> PolicyView {
    PolicyView {
        name: DEFAULT_POLICY.to_string(),
        priority: None,
        scope: None,
        settings,
    }
}

impl From<Stored> for PolicyView {
    fn from(p: Stored) -> Self {
        match p {
            Stored::Default(settings) => default_view(settings),
            Stored::Custom(p) => p.into(),
        }
    }
}

/// The tenant's default followed by its custom policies in priority order (shared with the UI).
pub async fn tenant_policies(
    s: &AppState,
    caller: &Caller,
    tenant: &str,
) -> ApiResult<Vec<PolicyView>> {
    let store = &s.relay.store;
    ops::tenants::find(store, &caller.ops_actor(), tenant).await?;
    let mut out = vec![default_view(store.tenant_default(tenant).await?)];
    out.extend(
        store
            .list_policies(tenant)
            .await?
            .into_iter()
            .map(Into::into),
    );
    Ok(out)
}

/// Replaces the settings of `name` (`default`: the tenant default); shared with the UI.
pub async fn put_settings(
    s: &AppState,
    caller: &Caller,
    tenant: &str,
    name: &str,
    settings: PolicySettings,
) -> ApiResult<PolicyView> {
    let ceilings = &s.relay.cfg.policy.ceilings;
    let actor = caller.ops_actor();
    let stored = ops::policies::set(
        &s.relay.store,
        ceilings,
        &actor,
        tenant,
        Some(name),
        settings,
    )
    .await?;
    Ok(stored.into())
}

#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", params(TenantQuery),
    responses((status = 200, body = Vec<PolicyView>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<Vec<PolicyView>>> {
    let tenant = caller.target_tenant(q.tenant.as_deref().filter(|t| !t.is_empty()))?;
    Ok(Json(tenant_policies(&s, &caller, &tenant).await?))
}

#[utoipa::path(post, path = "/api/v1/policies/{tenant}", tag = "policies",
    params(("tenant" = String, Path)), request_body = Object,
    responses((status = 201, body = PolicyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(p): ApiJson<Policy>,
) -> ApiResult<(StatusCode, Json<PolicyView>)> {
    let ceilings = &s.relay.cfg.policy.ceilings;
    let actor = caller.ops_actor();
    let p = ops::policies::add(&s.relay.store, ceilings, &actor, &tenant, p).await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

#[utoipa::path(get, path = "/api/v1/policies/{tenant}/{name}", tag = "policies",
    params(("tenant" = String, Path), ("name" = String, Path, description = "`default` for the tenant default")),
    responses((status = 200, body = PolicyDetail), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<Json<PolicyDetail>> {
    let all = tenant_policies(&s, &caller, &tenant).await?;
    let default = all.first().map(|p| p.settings.clone()).unwrap_or_default();
    let policy = all.into_iter().find(|p| p.name == name).ok_or_else(|| {
        ApiError::not_found(format!("policy {name} of tenant {tenant} not found"))
    })?;
    let effective = policy
        .settings
        .resolve(&default, &s.relay.cfg.policy.default);
    Ok(Json(PolicyDetail { policy, effective }))
}

#[utoipa::path(put, path = "/api/v1/policies/{tenant}/{name}", tag = "policies",
    params(("tenant" = String, Path), ("name" = String, Path, description = "`default` for the tenant default")),
    request_body(content = Object, description = "the settings object (SPEC §8 keys)"),
    responses((status = 200, body = PolicyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn put_one(
    State(s): State<AppState>,
    caller: Caller,
    Path((tenant, name)): Path<(String, String)>,
    ApiJson(settings): ApiJson<PolicySettings>,
) -> ApiResult<Json<PolicyView>> {
    Ok(Json(
        put_settings(&s, &caller, &tenant, &name, settings).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/policies/{tenant}/{name}", tag = "policies",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path((tenant, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ops::policies::remove(&s.relay.store, &caller.ops_actor(), &tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
