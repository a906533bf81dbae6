//! `/api/v1/policies` (SPEC §2.4, §8): a tenant's outbound spam policies. The name `default` is
//! the tenant's default settings; other names are custom policies (scope + priority +
//! settings). A PUT body is the settings object with the SPEC §8 keys; an unknown key is 422
//! naming it, an out-of-range value 422 naming the key. Writes need a tenant admin of that
//! tenant or an operator, and are audited.

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
use crate::ops::policies::{PolicyRefusal, authorize};

impl From<PolicyRefusal> for ApiError {
    fn from(e: PolicyRefusal) -> ApiError {
        match e {
            PolicyRefusal::Forbidden(m) => ApiError::forbidden(m),
            PolicyRefusal::Invalid(m) => ApiError::invalid(m),
            PolicyRefusal::Store(e) => e.into(),
        }
    }
}

/// `next` as the caller may store it over `current` (SPEC §9, `ops::policies`).
async fn authorized(
    s: &AppState,
    caller: &Caller,
    tenant: &str,
    current: &PolicySettings,
    next: PolicySettings,
) -> ApiResult<PolicySettings> {
    let ceilings = &s.relay.cfg.policy.ceilings;
    Ok(authorize(
        &s.relay.store,
        ceilings,
        caller.token.role,
        tenant,
        current,
        next,
    )
    .await?)
}

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

/// 404 unless the tenant exists and the caller sees it.
async fn visible_tenant(s: &AppState, caller: &Caller, tenant: &str) -> ApiResult<()> {
    caller.check_visible(Some(tenant), &format!("tenant {tenant}"))?;
    match s.relay.store.tenant(tenant).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("tenant {tenant} not found"))),
    }
}

/// The tenant's default followed by its custom policies in priority order (shared with the UI).
pub async fn tenant_policies(
    s: &AppState,
    caller: &Caller,
    tenant: &str,
) -> ApiResult<Vec<PolicyView>> {
    visible_tenant(s, caller, tenant).await?;
    let store = &s.relay.store;
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

/// Replaces the settings of `name` (`default`: the tenant default); audited.
pub async fn put_settings(
    s: &AppState,
    caller: &Caller,
    tenant: &str,
    name: &str,
    settings: PolicySettings,
) -> ApiResult<PolicyView> {
    visible_tenant(s, caller, tenant).await?;
    caller.require_write()?;
    let store = &s.relay.store;
    let view = if name == DEFAULT_POLICY {
        let current = store.tenant_default(tenant).await?;
        let settings = authorized(s, caller, tenant, &current, settings).await?;
        store.set_tenant_default(tenant, &settings).await?;
        default_view(settings)
    } else {
        let Some(mut p) = store.policy(tenant, name).await? else {
            return Err(ApiError::not_found(format!(
                "policy {name} of tenant {tenant} not found (create it with POST /api/v1/policies/{tenant})"
            )));
        };
        p.settings = authorized(s, caller, tenant, &p.settings, settings).await?;
        store.put_policy(tenant, &p).await?;
        p.into()
    };
    let detail = serde_json::to_string(&view.settings).unwrap_or_default();
    caller
        .audit(s, "policy.set", &format!("{tenant}/{name}"), &detail)
        .await?;
    Ok(view)
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
    ApiJson(mut p): ApiJson<Policy>,
) -> ApiResult<(StatusCode, Json<PolicyView>)> {
    visible_tenant(&s, &caller, &tenant).await?;
    caller.require_write()?;
    if p.name == DEFAULT_POLICY {
        return Err(ApiError::invalid(
            "name: `default` is the tenant default; PUT /api/v1/policies/{tenant}/default",
        ));
    }
    if p.scope.senders.is_empty() && p.scope.domains.is_empty() {
        return Err(ApiError::invalid(
            "scope: a policy needs at least one sender or domain",
        ));
    }
    p.settings = authorized(&s, &caller, &tenant, &PolicySettings::default(), p.settings).await?;
    let store = &s.relay.store;
    if store.policy(&tenant, &p.name).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("policy {} of tenant {tenant} already exists", p.name),
        ));
    }
    store.put_policy(&tenant, &p).await?;
    let detail = serde_json::to_string(&p).unwrap_or_default();
    caller
        .audit(&s, "policy.add", &format!("{tenant}/{}", p.name), &detail)
        .await?;
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
    visible_tenant(&s, &caller, &tenant).await?;
    caller.require_write()?;
    s.relay.store.remove_policy(&tenant, &name).await?;
    caller
        .audit(&s, "policy.remove", &format!("{tenant}/{name}"), "")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
