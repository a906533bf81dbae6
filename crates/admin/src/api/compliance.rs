//! `/api/v1/compliance` (issue 25 part 4): the bulk-sender compliance report — per tenant its
//! bulk streams with each check's latest outcome and failure sample, and its complaint rate
//! against the 0.1 % / 0.3 % lines. Tenant roles get their own tenant only (another tenant is
//! 404); operators every tenant, or `?tenant=`. The rules are `ops::compliance`'.

use axum::Json;
use axum::extract::{Query, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiResult, ErrorBody};
use super::{AppState, TenantQuery};
use crate::ops;
pub use crate::ops::compliance::TenantCompliance;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[utoipa::path(get, path = "/api/v1/compliance", tag = "compliance", params(TenantQuery),
    responses((status = 200, body = Vec<TenantCompliance>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<Vec<TenantCompliance>>> {
    let tenant = q.tenant.as_deref().filter(|t| !t.is_empty());
    let report = ops::compliance::report(
        &s.relay,
        &caller.ops_actor(),
        tenant,
        s.relay.clock.now_ms(),
    )
    .await?;
    Ok(Json(report))
}
