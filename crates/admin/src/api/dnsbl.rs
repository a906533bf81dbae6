//! `/api/v1/dnsbl` (SPEC §4): the listing state of every pool IP on every configured zone (latest
//! answer per zone, drained or in rotation) and the check history. Service-wide: operators only.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(history))
}

#[utoipa::path(get, path = "/api/v1/dnsbl", tag = "dnsbl",
    responses((status = 200, body = Vec<Object>), (status = 403, body = ErrorBody)))]
async fn status(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<outguard_relay::dnsbl::IpStatus>>> {
    caller.require_operator()?;
    outguard_relay::dnsbl::status(&s.relay)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// One pool IP; all when absent.
    pub ip: Option<String>,
    /// At most this many checks (1–1,000; default 200).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/dnsbl/history", tag = "dnsbl", params(HistoryQuery),
    responses((status = 200, body = Vec<Object>), (status = 403, body = ErrorBody)))]
async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_operator()?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let h =
        outguard_relay::dnsbl::history(&s.relay, q.ip.as_deref().filter(|i| !i.is_empty()), limit)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(serde_json::to_value(h).unwrap_or_default()))
}
