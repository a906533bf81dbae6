//! `/api/v1/domains`: a tenant's accepted domains (the domains its accounts may send from). A
//! tenant admin's new domain is `pending` until its DNS TXT record is found (`POST
//! /api/v1/domains/{domain}/verify`, or the periodic check); the rules are `ops::domains`'.

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
use crate::ops;
use crate::ops::verify::TxtResolver;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, remove))
        .routes(routes!(verify))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainView {
    pub domain: String,
    pub tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dkim_selector: Option<String>,
    /// `verified` (usable as a sender) or `pending`.
    pub status: String,
    /// While pending: publish the TXT record `outguard-verify=<token>` at the domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_token: Option<String>,
}

impl From<Domain> for DomainView {
    fn from(d: Domain) -> Self {
        DomainView {
            domain: d.domain,
            tenant: d.tenant,
            dkim_selector: d.dkim_selector,
            status: d.status.as_str().to_string(),
            verification_token: d.verification_token,
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
    let d = ops::domains::add(&s.relay.store, &caller.ops_actor(), &tenant, &body.domain).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}", tag = "domains", params(("domain" = String, Path)),
    responses((status = 200, body = DomainView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<DomainView>> {
    let d = ops::domains::find(&s.relay.store, &caller.ops_actor(), &name).await?;
    Ok(Json(d.into()))
}

#[utoipa::path(post, path = "/api/v1/domains/{domain}/verify", tag = "domains", params(("domain" = String, Path)),
    responses((status = 200, body = DomainView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn verify(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<DomainView>> {
    let actor = caller.ops_actor();
    // An operator verifies directly; a tenant admin's domain needs its TXT record.
    let dns = if actor.is_operator() {
        None
    } else {
        Some(TxtResolver::new(&s.relay.cfg.dns).map_err(|e| {
            tracing::error!(error = %e, "cannot build the DNS resolver");
            ApiError::internal("the DNS resolver is not available")
        })?)
    };
    let d = ops::domains::verify(&s.relay.store, dns.as_ref(), &actor, &name).await?;
    Ok(Json(d.into()))
}

#[utoipa::path(delete, path = "/api/v1/domains/{domain}", tag = "domains", params(("domain" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    ops::domains::remove(&s.relay.store, &caller.ops_actor(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
