//! `POST /api/v1/simulate` (issue 22): what would candidate policy settings have done to the
//! recorded traffic of a span? Read-only. Operators may simulate any tenant (or all); tenant
//! admins and tenant readers — who may read the policies — their own tenant only, whatever the
//! body names (another tenant is 404). At most 31 days (`422` beyond). The rules and the replay
//! are `ops::simulate`'s.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use outguard_policy::simulate::SimReport;
use outguard_types::time::now_ms;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::ops;
use crate::ops::simulate::{ServiceSettings, SimulateRequest};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(simulate))
}

/// What to simulate.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    /// How far back to replay: an age such as `7d` or `36h` (at most 31 days).
    pub since: String,
    /// Operators: one tenant (default: all). Tenant roles: always their own.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Candidate values by policy key (SPEC §8), e.g. `{"recipient_limit_external_per_hour": 50}`;
    /// they replace the stored value in every policy of the tenant(s).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// The replay's result: the restrictions the candidate makes, the recipients it refuses, the
/// difference from what really happened, and the replay's approximations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SimulateAnswer {
    #[schema(value_type = Object)]
    pub report: SimReport,
}

/// A JSON value as `policy set` would take it (`50`, `"50"`, `true`, `"a@x,b@x"`).
fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(as_text).collect::<Vec<_>>().join(","),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[utoipa::path(post, path = "/api/v1/simulate", tag = "simulate", request_body = SimulateBody,
    responses((status = 200, body = SimulateAnswer), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn simulate(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SimulateBody>,
) -> ApiResult<Json<SimulateAnswer>> {
    let (from, to) = ops::simulate::span(&body.since, now_ms())?;
    let texts: Vec<(&str, String)> = body
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), as_text(v)))
        .collect();
    let overrides = ops::simulate::overrides(texts.iter().map(|(k, v)| (*k, v.as_str())))?;
    let service = ServiceSettings {
        policy_default: s.relay.cfg.policy.default.clone(),
        messages_per_minute: s.relay.cfg.limits.messages_per_minute,
    };
    let req = SimulateRequest {
        from,
        to,
        tenant: body.tenant.filter(|t| !t.is_empty()),
        overrides,
    };
    let report = ops::simulate::run(&s.relay.store, &service, &caller.ops_actor(), &req)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(SimulateAnswer { report }))
}
