//! `/api/v1/accounts`, keyed by address: SMTP AUTH users (the rules: `ops::accounts`). A password hash never appears; a
//! created account without a given password gets a generated one, returned once.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
pub use outguard_types::api::{NewAccount, SendAs};
use outguard_types::model::Account;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiJson, ApiResult, ErrorBody};
use super::{AppState, TenantQuery};
use crate::ops;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, remove))
        .routes(routes!(reset_password))
        .routes(routes!(send_as_add))
        .routes(routes!(send_as_remove))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub address: String,
    pub tenant: String,
    pub created_at: i64,
    /// Extra addresses (`user@dom`) or whole domains (`@dom`) this account may send as.
    pub send_as: Vec<String>,
    /// Where the account stands on the trust ramp (`[trust_ramp]`, issue 25); only in
    /// `GET /api/v1/accounts/{address}`, and only while the account's limits are reduced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_ramp: Option<RampView>,
}

/// An account's reduced limits on the trust ramp.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RampView {
    /// Clean day (1 on the first day, after creation, a restriction's end or a setback).
    pub clean_day: u32,
    pub days: u32,
    /// Percent of the policy's recipient limits that applies today.
    pub limits_percent: u32,
}

impl From<outguard_policy::ramp::Ramp> for RampView {
    fn from(r: outguard_policy::ramp::Ramp) -> Self {
        RampView {
            clean_day: r.day + 1,
            days: r.days,
            limits_percent: (r.factor * 100.0).round() as u32,
        }
    }
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            address: a.address,
            tenant: a.tenant,
            created_at: a.created_at,
            send_as: a.send_as,
            trust_ramp: None,
        }
    }
}

/// The created account; `password` is present only when the server generated it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccount {
    #[serde(flatten)]
    pub account: AccountView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewPassword {
    pub password: String,
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(TenantQuery),
    responses((status = 200, body = Vec<AccountView>), (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<TenantQuery>,
) -> ApiResult<Json<Vec<AccountView>>> {
    let scope = caller.list_scope(q.tenant.as_deref())?;
    let all = s.relay.store.list_accounts(scope.as_deref()).await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = CreatedAccount), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewAccount>,
) -> ApiResult<(StatusCode, Json<CreatedAccount>)> {
    let tenant = caller.target_tenant(body.tenant.as_deref())?;
    let (a, generated) = ops::accounts::add(
        &s.relay.store,
        &caller.ops_actor(),
        &tenant,
        &body.address,
        body.password.as_deref(),
        s.relay.clock.now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccount {
            account: a.into(),
            password: generated,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/accounts/{address}", tag = "accounts", params(("address" = String, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let a = ops::accounts::find(&s.relay.store, &caller.ops_actor(), &address).await?;
    let now = s.relay.clock.now_ms();
    let ramp = s.relay.account_ramp(&a.address, a.created_at, now).await;
    let mut view = AccountView::from(a);
    view.trust_ramp = ramp.map(Into::into);
    Ok(Json(view))
}

#[utoipa::path(delete, path = "/api/v1/accounts/{address}", tag = "accounts", params(("address" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> ApiResult<StatusCode> {
    ops::accounts::remove(&s.relay.store, &caller.ops_actor(), &address).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/accounts/{address}/password", tag = "accounts", params(("address" = String, Path)),
    responses((status = 200, body = NewPassword, description = "A new generated password, shown once"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reset_password(
    State(s): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> ApiResult<Json<NewPassword>> {
    let password =
        ops::accounts::reset_password(&s.relay.store, &caller.ops_actor(), &address).await?;
    Ok(Json(NewPassword { password }))
}

#[utoipa::path(post, path = "/api/v1/accounts/{address}/send_as", tag = "accounts", params(("address" = String, Path)), request_body = SendAs,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_as_add(
    State(s): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<SendAs>,
) -> ApiResult<StatusCode> {
    ops::accounts::send_as_add(&s.relay.store, &caller.ops_actor(), &address, &body.target).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/accounts/{address}/send_as/{target}", tag = "accounts",
    params(("address" = String, Path), ("target" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn send_as_remove(
    State(s): State<AppState>,
    caller: Caller,
    Path((address, target)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ops::accounts::send_as_remove(&s.relay.store, &caller.ops_actor(), &address, &target).await?;
    Ok(StatusCode::NO_CONTENT)
}
