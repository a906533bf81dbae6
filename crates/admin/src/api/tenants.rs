//! `/api/v1/tenants`: operators create and remove tenants (`ops::tenants`); a tenant role sees
//! only its own.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
pub use outguard_types::api::NewTenant;
use outguard_types::model::Tenant;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiJson, ApiResult, ErrorBody};
use crate::ops;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, remove))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        TenantView {
            name: t.name,
            created_at: t.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = Vec<TenantView>), (status = 401, body = ErrorBody)))]
async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<TenantView>>> {
    let all = s.relay.store.list_tenants().await?;
    Ok(Json(
        all.into_iter()
            .filter(|t| caller.sees(Some(&t.name)))
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = TenantView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewTenant>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    let t = ops::tenants::add(
        &s.relay.store,
        &caller.ops_actor(),
        &body.name,
        s.relay.clock.now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}", tag = "tenants", params(("name" = String, Path)),
    responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<TenantView>> {
    let t = ops::tenants::find(&s.relay.store, &caller.ops_actor(), &name).await?;
    Ok(Json(t.into()))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{name}", tag = "tenants", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    ops::tenants::remove(&s.relay.store, &caller.ops_actor(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
