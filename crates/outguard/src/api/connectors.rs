//! `/api/v1/connectors`: a tenant's own mail servers, admitted by source network. A CIDR holds a
//! `/`, so one connector's path is `/api/v1/connectors/{address}/{prefix}`.

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
use crate::trace::now_ms;

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
}

impl From<Connector> for ConnectorView {
    fn from(c: Connector) -> Self {
        ConnectorView {
            cidr: c.cidr.to_string(),
            tenant: c.tenant,
            limit_per_hour: c.limit_per_hour,
            created_at: c.created_at,
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
    caller.require_write()?;
    let c = s
        .relay
        .store
        .add_connector(&tenant, body.cidr, body.limit_per_hour, now_ms())
        .await?;
    caller
        .audit(
            &s,
            "connector.add",
            &c.cidr.to_string(),
            &format!("tenant {tenant}"),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

async fn visible(s: &AppState, caller: &Caller, addr: &str, prefix: &str) -> ApiResult<Connector> {
    let missing = || ApiError::not_found(format!("connector {addr}/{prefix} not found"));
    let cidr: IpNet = format!("{addr}/{prefix}").parse().map_err(|_| missing())?;
    let cidr = cidr.trunc();
    let all = s.relay.store.list_connectors(caller.scope()).await?;
    all.into_iter().find(|c| c.cidr == cidr).ok_or_else(missing)
}

#[utoipa::path(get, path = "/api/v1/connectors/{address}/{prefix}", tag = "connectors",
    params(("address" = String, Path), ("prefix" = u8, Path)),
    responses((status = 200, body = ConnectorView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path((addr, prefix)): Path<(String, String)>,
) -> ApiResult<Json<ConnectorView>> {
    Ok(Json(visible(&s, &caller, &addr, &prefix).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/connectors/{address}/{prefix}", tag = "connectors",
    params(("address" = String, Path), ("prefix" = u8, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path((addr, prefix)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let c = visible(&s, &caller, &addr, &prefix).await?;
    caller.require_write()?;
    s.relay.store.remove_connector(c.cidr).await?;
    caller
        .audit(&s, "connector.remove", &c.cidr.to_string(), "")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
