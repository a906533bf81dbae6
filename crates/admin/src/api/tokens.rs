//! `/api/v1/tokens` (operators only): API tokens. The secret is returned once, at creation;
//! only its digest is stored. Revoking takes effect on the next request (no cache).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
pub use outguard_types::api::NewToken;
use outguard_types::model::{Role, TokenInfo};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::ops;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    /// `operator`, `tenant_admin` or `tenant_reader`.
    pub role: String,
    pub tenant: Option<String>,
    pub created_at: i64,
}

impl From<TokenInfo> for TokenView {
    fn from(t: TokenInfo) -> Self {
        TokenView {
            id: t.id,
            role: t.role.as_str().to_string(),
            tenant: t.tenant,
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenView,
    /// The bearer secret, shown this once.
    pub secret: String,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 403, body = ErrorBody)))]
async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<TokenView>>> {
    caller.require_operator()?;
    Ok(Json(
        s.relay
            .store
            .list_tokens()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::invalid(format!(
            "role: expected operator, tenant_admin or tenant_reader, got {:?}",
            body.role
        ))
    })?;
    let (info, secret) = ops::tokens::create(
        &s.relay.store,
        &caller.ops_actor(),
        role,
        body.tenant.as_deref(),
        s.relay.clock.now_ms(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: info.into(),
            secret,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ops::tokens::revoke(&s.relay.store, &caller.ops_actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
