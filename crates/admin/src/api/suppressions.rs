//! `/api/v1/suppressions` (issue 25): the recipients a tenant's mail may not go to because they
//! hard-bounced (`source` `bounce` or `dsn`) or an admin added them (`manual`); RCPT to one gets
//! `550 5.1.1` until `until`. Tenant roles see and change their own tenant's, operators every
//! tenant's; the rules are `ops::suppressions`'.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outguard_store::{MAX_SUPPRESSIONS_LIMIT, Suppression};
pub use outguard_types::api::NewSuppression;
use outguard_types::time::now_ms;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiJson, ApiResult, ErrorBody};
use crate::ops;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionQuery {
    /// Only this tenant (operators); tenant roles always see their own.
    pub tenant: Option<String>,
    /// At most this many, newest first (default 1000, at most 10000).
    pub limit: Option<u32>,
}

/// One suppressed recipient of one tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    pub tenant: String,
    pub recipient: String,
    /// Refused until then (Unix ms).
    pub until: i64,
    pub created_at: i64,
    /// `bounce` (5.1.x at our delivery), `dsn` (a trusted DSN) or `manual`.
    pub source: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl From<Suppression> for SuppressionView {
    fn from(s: Suppression) -> Self {
        SuppressionView {
            tenant: s.tenant,
            recipient: s.recipient,
            until: s.until,
            created_at: s.created_at,
            source: s.source,
            reason: s.reason,
            message_id: s.message_id,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/suppressions", tag = "suppressions", params(SuppressionQuery),
    responses((status = 200, body = Vec<SuppressionView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<SuppressionQuery>,
) -> ApiResult<Json<Vec<SuppressionView>>> {
    let tenant = q.tenant.as_deref().filter(|t| !t.is_empty());
    let limit = q.limit.unwrap_or(1000).min(MAX_SUPPRESSIONS_LIMIT);
    let list =
        ops::suppressions::list(&s.relay.store, &caller.ops_actor(), tenant, now_ms(), limit)
            .await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/api/v1/suppressions", tag = "suppressions", request_body = NewSuppression,
    responses((status = 201, body = SuppressionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewSuppression>,
) -> ApiResult<(StatusCode, Json<SuppressionView>)> {
    let tenant = caller.target_tenant(body.tenant.as_deref())?;
    let done = ops::suppressions::add(
        &s.relay.store,
        &caller.ops_actor(),
        &tenant,
        &body,
        s.relay.cfg.suppression.duration,
        now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(done.into())))
}

#[utoipa::path(delete, path = "/api/v1/suppressions/{tenant}/{recipient}", tag = "suppressions",
    params(("tenant" = String, Path), ("recipient" = String, Path, description = "the suppressed address")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path((tenant, recipient)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ops::suppressions::remove(&s.relay.store, &caller.ops_actor(), &tenant, &recipient).await?;
    Ok(StatusCode::NO_CONTENT)
}
