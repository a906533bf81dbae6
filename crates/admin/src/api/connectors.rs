//! `/api/v1/connectors`: a tenant's own mail servers, admitted by source network. A CIDR holds a
//! `/`, so one connector's path is `/api/v1/connectors/{address}/{prefix}`. The rules (width,
//! overlap, operator-only `allow_wide` / `forwarding`) are `ops::connectors`'.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ipnet::IpNet;
pub use outguard_types::api::NewConnector;
use outguard_types::model::Connector;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::{AppState, TenantQuery};
use crate::ops;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, remove))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorView {
    /// Network, e.g. `192.0.2.0/24`.
    pub cidr: String,
    pub tenant: String,
    pub limit_per_hour: Option<u32>,
    pub created_at: i64,
    /// Relays mail from domains the tenant has not registered (set by operators only).
    pub forwarding: bool,
}

impl From<Connector> for ConnectorView {
    fn from(c: Connector) -> Self {
        ConnectorView {
            cidr: c.cidr.to_string(),
            tenant: c.tenant,
            limit_per_hour: c.limit_per_hour,
            created_at: c.created_at,
            forwarding: c.forwarding,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/connectors", tag = "connectors", params(TenantQuery),
    responses((status = 200, body = Vec<ConnectorView>), (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<Vec<ConnectorView>>> {
    let scope = caller.list_scope(q.tenant.as_deref())?;
    let all = s.relay.store.list_connectors(scope.as_deref()).await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/api/v1/connectors", tag = "connectors", request_body = NewConnector,
    responses((status = 201, body = ConnectorView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewConnector>,
) -> ApiResult<(StatusCode, Json<ConnectorView>)> {
    let tenant = caller.target_tenant(body.tenant.as_deref())?;
    let req = ops::connectors::NewConnector {
        tenant,
        cidr: body.cidr,
        limit_per_hour: body.limit_per_hour,
        allow_wide: body.allow_wide,
        forwarding: body.forwarding,
    };
    let c = ops::connectors::add(
        &s.relay.store,
        &caller.ops_actor(),
        req,
        s.relay.clock.now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

fn cidr_of(addr: &str, prefix: &str) -> ApiResult<IpNet> {
    format!("{addr}/{prefix}")
        .parse()
        .map_err(|_| ApiError::not_found(format!("connector {addr}/{prefix} not found")))
}

#[utoipa::path(get, path = "/api/v1/connectors/{address}/{prefix}", tag = "connectors",
    params(("address" = String, Path), ("prefix" = u8, Path)),
    responses((status = 200, body = ConnectorView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path((addr, prefix)): Path<(String, String)>,
) -> ApiResult<Json<ConnectorView>> {
    let cidr = cidr_of(&addr, &prefix)?;
    let c = ops::connectors::find(&s.relay.store, &caller.ops_actor(), cidr).await?;
    Ok(Json(c.into()))
}

#[utoipa::path(delete, path = "/api/v1/connectors/{address}/{prefix}", tag = "connectors",
    params(("address" = String, Path), ("prefix" = u8, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path((addr, prefix)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let cidr = cidr_of(&addr, &prefix)?;
    ops::connectors::remove(&s.relay.store, &caller.ops_actor(), cidr).await?;
    Ok(StatusCode::NO_CONTENT)
}
