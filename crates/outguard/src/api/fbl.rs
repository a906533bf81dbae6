//! `/api/v1/fbl` (SPEC §4): complaint reports in ARF posted by mailbox providers' feedback
//! loops (`Content-Type: message/rfc822`, the raw report), and the stored records. A malformed
//! report is kept and flagged (still `202`); tenant roles see only reports attributed to them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use outguard_store::FblRecord;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};

/// ARF reports may carry the whole original message.
const REPORT_LIMIT: usize = 10 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_report, list))
        .routes(routes!(get_report))
        .layer(DefaultBodyLimit::max(REPORT_LIMIT))
}

fn tenant_of(r: &FblRecord) -> Option<&str> {
    r.attributed.as_ref().and_then(|a| a.tenant.as_deref())
}

#[utoipa::path(post, path = "/api/v1/fbl", tag = "fbl", request_body(content = String, content_type = "message/rfc822"),
    responses((status = 202, body = Object), (status = 403, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn post_report(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_operator()?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("message/rfc822") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the raw report as Content-Type: message/rfc822",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("the report is empty"));
    }
    let rec = crate::fbl::ingest(&s.relay, &body)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    caller
        .audit(&s, "fbl.post", &rec.id, &rec.feedback_type)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": rec.id, "attributed": rec.attributed})),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct FblQuery {
    /// Only reports attributed to this tenant (operators); tenant roles always see their own.
    pub tenant: Option<String>,
    /// At most this many (1–1,000; default 100).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/fbl", tag = "fbl", params(FblQuery),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<FblQuery>,
) -> ApiResult<Json<Vec<FblRecord>>> {
    let scope = caller.list_scope(q.tenant.as_deref().filter(|t| !t.is_empty()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let all = crate::fbl::list(&s.relay, scope.as_deref(), limit)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(
        all.into_iter()
            .filter(|r| caller.sees(tenant_of(r)))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/fbl/{id}", tag = "fbl", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn get_report(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<FblRecord>> {
    let missing = || ApiError::not_found(format!("report {id} not found"));
    let rec = crate::fbl::get(&s.relay, &id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(missing)?;
    if !caller.sees(tenant_of(&rec)) {
        return Err(missing());
    }
    Ok(Json(rec))
}
