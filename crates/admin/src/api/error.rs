//! The API's one error type and its wire form `{"error":{"code","message"}}` (SPEC §5), plus the
//! body extractor that turns malformed JSON into 400 and well-formed-but-wrong JSON into 422
//! with serde's message (axum's own rejections are plain text).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outguard_store::StoreError;
use outguard_store::spool::SpoolError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// An API failure: HTTP status, a stable machine code and a human message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The error body every failing call returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `invalid`, `too_large`, `unavailable`, `internal`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }
    pub fn unauthorized(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    pub fn invalid(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
    }
    pub fn internal(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::Invalid { .. } => ApiError::invalid(e.to_string()),
            StoreError::Backend(_) | StoreError::SchemaNewer { .. } => {
                tracing::error!(error = %e, "store failure in the admin API");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the records store failed",
                )
            }
        }
    }
}

impl From<crate::ops::OpsError> for ApiError {
    fn from(e: crate::ops::OpsError) -> ApiError {
        use crate::ops::OpsError;
        match e {
            OpsError::Invalid(m) => ApiError::invalid(m),
            OpsError::Forbidden(m) => ApiError::forbidden(m),
            OpsError::NotFound(m) => ApiError::not_found(m),
            OpsError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            OpsError::Unavailable(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            OpsError::Internal(m) => ApiError::internal(m),
            OpsError::Store(e) => e.into(),
        }
    }
}

impl From<SpoolError> for ApiError {
    fn from(e: SpoolError) -> ApiError {
        match e {
            SpoolError::NotFound(id) | SpoolError::BadId(id) => {
                ApiError::not_found(format!("message {id} is not in the queue"))
            }
            other => {
                tracing::error!(error = %other, "spool failure in the admin API");
                ApiError::internal("the spool failed")
            }
        }
    }
}

/// `Json<T>` with the API's error body: syntax errors are 400, type/field errors 422, an
/// over-size body 413, a missing `Content-Type: application/json` 415. Any string in the body
/// (a name, an address, a reason, a URL…) holding a control character is 422 naming its field
/// (SPEC §9), checked here once for every resource before the body reaches a handler.
pub struct ApiJson<T>(pub T);

/// The first string of `v` (values and object keys) holding a control character.
fn control_in(v: &serde_json::Value, path: &str) -> Result<(), String> {
    use outguard_types::text::check_no_control;
    match v {
        serde_json::Value::String(s) => check_no_control(path, s),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| control_in(x, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, x)| {
            let at = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            check_no_control(&at, k)?;
            control_in(x, &at)
        }),
        _ => Ok(()),
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(v)) => {
                control_in(&v, "").map_err(ApiError::invalid)?;
                // Through axum again for its messages, which name the field at fault.
                let bytes = serde_json::to_vec(&v).map_err(|e| ApiError::invalid(e.to_string()))?;
                match Json::<T>::from_bytes(&bytes) {
                    Ok(Json(t)) => Ok(ApiJson(t)),
                    Err(e) => Err(ApiError::invalid(e.body_text())),
                }
            }
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::invalid(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_request",
                "expected Content-Type: application/json",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body too large",
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
