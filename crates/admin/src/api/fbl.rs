//! `/api/v1/fbl` (SPEC §4, §9): complaint reports in ARF posted by mailbox providers' feedback
//! loops (`Content-Type: message/rfc822`, the raw report), and the stored records. A malformed
//! report is kept and flagged (still `202`).
//!
//! Who may do what (SPEC §9):
//! - `POST` is for operators only, and an operator's report is trusted (counted, learned). A
//!   tenant admin's POST is refused (`403`): letting a tenant make reports count would let it
//!   restrict accounts or train overlays at will. No per-IP rate applies (operators only), but
//!   the size cap does: over `[fbl] max_report_size` is `413`.
//! - `GET /api/v1/fbl` and `GET /api/v1/fbl/{id}` give metadata only (no raw body). Operators
//!   see every report; tenant roles see only trusted reports attributed to their tenant (an
//!   untrusted report is an anonymous claim, not something a tenant should act on).
//! - `GET /api/v1/fbl/{id}/raw` gives the report as received (`message/rfc822`), to whoever
//!   may see its metadata: operators, and tenant roles for their own trusted reports.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use outguard_store::FblRecord;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_report, list))
        .routes(routes!(get_report))
        .routes(routes!(get_raw))
}

fn tenant_of(r: &FblRecord) -> Option<&str> {
    r.attributed.as_ref().and_then(|a| a.tenant.as_deref())
}

/// Whether the caller may see this report: operators all, tenant roles their trusted ones.
fn visible(caller: &Caller, r: &FblRecord) -> bool {
    caller.sees(tenant_of(r)) && (caller.scope().is_none() || r.trusted)
}

/// The body, or `413` past `[fbl] max_report_size` (read no further than the cap).
async fn read_capped(body: Body, max: u64) -> ApiResult<Bytes> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the report exceeds the {max}-byte limit ([fbl] max_report_size)"),
        )
    })
}

#[utoipa::path(post, path = "/api/v1/fbl", tag = "fbl", request_body(content = String, content_type = "message/rfc822"),
    responses((status = 202, body = Object), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn post_report(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
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
    let body = read_capped(body, s.relay.cfg.fbl.max_report_size).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the report is empty"));
    }
    let rec = outguard_relay::fbl::ingest(&s.relay, &body, outguard_relay::fbl::Source::Operator)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    crate::ops::fbl::recorded(
        &s.relay.store,
        &caller.ops_actor(),
        crate::ops::fbl::HandedIn::Posted,
        &rec,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": rec.id, "attributed": rec.attributed, "trusted": rec.trusted})),
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
    let operator = caller.scope().is_none();
    let all = outguard_relay::fbl::list(&s.relay, scope.as_deref(), operator, limit)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(
        all.into_iter().filter(|r| visible(&caller, r)).collect(),
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
    let mut rec = outguard_relay::fbl::get(&s.relay, &id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(missing)?;
    if !visible(&caller, &rec) {
        return Err(missing());
    }
    rec.raw = String::new(); // metadata only: the report itself is `/raw`
    Ok(Json(rec))
}

#[utoipa::path(get, path = "/api/v1/fbl/{id}/raw", tag = "fbl", params(("id" = String, Path)),
    responses((status = 200, content_type = "message/rfc822", body = String), (status = 404, body = ErrorBody)))]
async fn get_raw(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let missing = || ApiError::not_found(format!("report {id} not found"));
    let fail = |e: outguard_relay::fbl::FblError| ApiError::internal(e.to_string());
    let rec = outguard_relay::fbl::get(&s.relay, &id)
        .await
        .map_err(fail)?
        .ok_or_else(missing)?;
    if !visible(&caller, &rec) {
        return Err(missing());
    }
    let raw = outguard_relay::fbl::raw(&s.relay, &id)
        .await
        .map_err(fail)?
        .ok_or_else(missing)?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], raw).into_response())
}
