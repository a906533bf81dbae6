//! `/api/v1/domains`: a tenant's accepted domains (the domains its accounts may send from).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
pub use outguard_types::api::NewDomain;
use outguard_types::model::Domain;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::{AppState, TenantQuery};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, remove))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainView {
    pub domain: String,
    pub tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dkim_selector: Option<String>,
}

impl From<Domain> for DomainView {
    fn from(d: Domain) -> Self {
        DomainView {
            domain: d.domain,
            tenant: d.tenant,
            dkim_selector: d.dkim_selector,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/domains", tag = "domains", params(TenantQuery),
    responses((status = 200, body = Vec<DomainView>), (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<Vec<DomainView>>> {
    let scope = caller.list_scope(q.tenant.as_deref())?;
    let all = s.relay.store.list_domains(scope.as_deref()).await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/api/v1/domains", tag = "domains", request_body = NewDomain,
    responses((status = 201, body = DomainView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewDomain>,
) -> ApiResult<(StatusCode, Json<DomainView>)> {
    let tenant = caller.target_tenant(body.tenant.as_deref())?;
    caller.require_write()?;
    let d = s.relay.store.add_domain(&tenant, &body.domain).await?;
    caller
        .audit(&s, "domain.add", &d.domain, &format!("tenant {tenant}"))
        .await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

async fn visible(s: &AppState, caller: &Caller, name: &str) -> ApiResult<Domain> {
    match s.relay.store.domain(name).await? {
        Some(d) if caller.sees(Some(&d.tenant)) => Ok(d),
        _ => Err(ApiError::not_found(format!("domain {name} not found"))),
    }
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}", tag = "domains", params(("domain" = String, Path)),
    responses((status = 200, body = DomainView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<DomainView>> {
    Ok(Json(visible(&s, &caller, &name).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/domains/{domain}", tag = "domains", params(("domain" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let d = visible(&s, &caller, &name).await?;
    caller.require_write()?;
    s.relay.store.remove_domain(&d.domain).await?;
    caller.audit(&s, "domain.remove", &d.domain, "").await?;
    Ok(StatusCode::NO_CONTENT)
}
