//! `/api/v1/alerts` (SPEC §3): recorded alerts newest first, filtered by tenant and kind, and
//! their acknowledgement. Tenant roles see their tenant's alerts only (service-wide alerts such
//! as `ip_listed` have no tenant and are operator-only); acknowledging needs write access.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outguard_policy::AlertKind;
use outguard_policy::alerts::ALERT_KINDS;
use outguard_store::{MAX_ALERTS_LIMIT, StoredAlert};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};

/// Page size when `limit` is absent.
pub const DEFAULT_ALERTS_LIMIT: u32 = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(ack))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Only this tenant (operators); tenant roles always see their own.
    pub tenant: Option<String>,
    /// `user_restricted`, `sending_limit_exceeded`, `suspicious_sending_pattern`,
    /// `tenant_restricted`, `ip_listed`, `ip_delisted`, `complaint_rate_exceeded`,
    /// `campaign_detected` or `suspicious_login_pattern`.
    pub kind: Option<String>,
    /// At most this many (1–10,000; default 100).
    pub limit: Option<u32>,
}

fn parse_kind(s: &str) -> ApiResult<AlertKind> {
    AlertKind::parse(s.trim()).ok_or_else(|| {
        let known: Vec<&str> = ALERT_KINDS.iter().map(|k| k.as_str()).collect();
        ApiError::bad_request(format!("kind: `{s}` is not one of {}", known.join(", ")))
    })
}

/// Alerts the caller may see (shared with the UI).
pub async fn visible(
    s: &AppState,
    caller: &Caller,
    q: &AlertsQuery,
) -> ApiResult<Vec<StoredAlert>> {
    let scope = caller.list_scope(q.tenant.as_deref().filter(|t| !t.is_empty()))?;
    let kind = q
        .kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(parse_kind)
        .transpose()?;
    let limit = q
        .limit
        .unwrap_or(DEFAULT_ALERTS_LIMIT)
        .clamp(1, MAX_ALERTS_LIMIT);
    let list = s
        .relay
        .store
        .list_alerts(scope.as_deref(), kind, limit)
        .await?;
    Ok(list
        .into_iter()
        .filter(|a| caller.sees(a.alert.tenant.as_deref()))
        .collect())
}

/// Acknowledges one alert (`ops::alerts::ack`; shared with the UI).
pub async fn acknowledge(s: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    Ok(crate::ops::alerts::ack(&s.relay.store, &caller.ops_actor(), id).await?)
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertsQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<AlertsQuery>,
) -> ApiResult<Json<Vec<StoredAlert>>> {
    Ok(Json(visible(&s, &caller, &q).await?))
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn ack(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    acknowledge(&s, &caller, &id)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}
