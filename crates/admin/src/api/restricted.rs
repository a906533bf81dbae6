//! `/api/v1/restricted` (SPEC §3, §5): restricted accounts, connectors and tenants, and the lift
//! with a reason. The rules are the CLI's (`outguard_relay::enforce::lift`): a tenant admin lifts its own
//! tenant's accounts and connectors within `max_unblocks_per_day`, only an operator lifts a
//! restricted tenant, readers lift nothing. `release_held` releases the subject's held mail
//! through the running queue. The relay notices a lift at its next restriction poll.

use axum::Json;
use axum::extract::{Path, Query, State};
use outguard_store::StoredRestriction;
pub use outguard_types::api::{ClearReputationRequest, LiftRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::queue::RelayQueue;
use crate::ops;
use outguard_relay::enforce::lift::parse_subject;
use outguard_types::time::now_ms;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(lift_one))
        .routes(routes!(clear_reputation))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RestrictedQuery {
    /// Only this tenant (operators); tenant roles always see their own.
    pub tenant: Option<String>,
    /// Also lifted and expired restrictions (history), newest first.
    #[serde(default)]
    pub all: bool,
}

/// What a lift did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiftResult {
    /// The restriction records as lifted (`{"id","subject","tenant","reason","lifted",…}`).
    #[schema(value_type = Vec<Object>)]
    pub lifted: Vec<StoredRestriction>,
    /// Ids of the held messages released.
    pub released: Vec<String>,
}

/// Restrictions visible to the caller: in force now, or (`all`) every one, newest first.
pub async fn visible(
    s: &AppState,
    caller: &Caller,
    tenant: Option<&str>,
    all: bool,
) -> ApiResult<Vec<StoredRestriction>> {
    let scope = caller.list_scope(tenant)?;
    let list = s
        .relay
        .store
        .list_restrictions_at(scope.as_deref(), (!all).then(now_ms))
        .await?;
    Ok(list
        .into_iter()
        .filter(|r| caller.sees(Some(&r.restriction.tenant)))
        .collect())
}

#[utoipa::path(get, path = "/api/v1/restricted", tag = "restricted", params(RestrictedQuery),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<RestrictedQuery>,
) -> ApiResult<Json<Vec<StoredRestriction>>> {
    let tenant = q.tenant.as_deref().filter(|t| !t.is_empty());
    Ok(Json(visible(&s, &caller, tenant, q.all).await?))
}

#[utoipa::path(get, path = "/api/v1/restricted/{address}", tag = "restricted",
    params(("address" = String, Path, description = "account address, connector CIDR or tenant name"), RestrictedQuery),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    Query(q): Query<RestrictedQuery>,
) -> ApiResult<Json<Vec<StoredRestriction>>> {
    let subject = parse_subject(&address);
    let mine: Vec<StoredRestriction> = visible(&s, &caller, None, q.all)
        .await?
        .into_iter()
        .filter(|r| r.restriction.subject.same(&subject))
        .collect();
    if mine.is_empty() {
        return Err(ApiError::not_found(format!(
            "no restriction of {address} found"
        )));
    }
    Ok(Json(mine))
}

/// Lifts every active restriction of `address` the caller may see (`ops::restricted::lift`;
/// shared with the UI). A lift holds on this node at once; held mail is released through the
/// running queue.
pub async fn lift_address(
    s: &AppState,
    caller: &Caller,
    address: &str,
    req: &LiftRequest,
) -> ApiResult<LiftResult> {
    let q = RelayQueue(&s.relay);
    let reason = req.reason.as_deref().unwrap_or("");
    let done = ops::restricted::lift(
        &s.relay.cfg,
        &s.relay.store,
        &caller.ops_actor(),
        address,
        reason,
        req.release_held.then_some(&q),
        s.relay.clock.now_ms(),
    )
    .await?;
    if !req.release_held {
        // Releasing refreshed already (`RelayQueue::restrictions_changed`).
        outguard_relay::enforce::refresh_restrictions_now(&s.relay).await;
    }
    Ok(LiftResult {
        lifted: done.lifted,
        released: done.released,
    })
}

#[utoipa::path(post, path = "/api/v1/restricted/{address}/lift", tag = "restricted",
    params(("address" = String, Path, description = "account address, connector CIDR or tenant name")),
    request_body = LiftRequest,
    responses((status = 200, body = LiftResult), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn lift_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    ApiJson(req): ApiJson<LiftRequest>,
) -> ApiResult<Json<LiftResult>> {
    Ok(Json(lift_address(&s, &caller, &address, &req).await?))
}

/// What clearing a reputation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClearReputationResult {
    /// The sender (account address or connector CIDR).
    pub subject: String,
    /// Its mail was leaving from `high-risk` (`ACCOUNT_RECENT_SPAM`) until now.
    pub was_recent_spam: bool,
}

/// Ends `ACCOUNT_RECENT_SPAM` for an account or connector at once (`ops::reputation::clear`):
/// its next message leaves by its own verdict. Tenant admins for their own tenant only.
#[utoipa::path(post, path = "/api/v1/restricted/{address}/clear-reputation", tag = "restricted",
    params(("address" = String, Path, description = "account address or connector CIDR")),
    request_body = ClearReputationRequest,
    responses((status = 200, body = ClearReputationResult), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn clear_reputation(
    State(s): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    ApiJson(req): ApiJson<ClearReputationRequest>,
) -> ApiResult<Json<ClearReputationResult>> {
    let done = ops::reputation::clear(
        &s.relay.store,
        &*s.relay.enforcer.signals,
        &caller.ops_actor(),
        &address,
        req.reason.as_deref().unwrap_or(""),
    )
    .await?;
    Ok(Json(ClearReputationResult {
        subject: done.subject,
        was_recent_spam: done.was_recent_spam,
    }))
}
