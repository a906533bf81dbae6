//! `/api/v1/queue`: messages waiting on this node (queued, deferred, held, quarantined), and the
//! operator actions on them: release, hold, retry now, delete. The owning tenant is read from the
//! spooled envelope, so tenant scoping uses the spool's truth, not the (lagging) trace.
//! `preview` shows headers and the text part only: a held message's HTML is never rendered.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use outguard_store::spool::Envelope;
use outguard_types::model::MessageState;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::ops::{self, OpsError};
use outguard_delivery::queue::QueueItem;

/// The largest text part a preview returns (bytes of UTF-8; cut on a character boundary).
pub const PREVIEW_TEXT_MAX: usize = 64 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(remove))
        .routes(routes!(preview))
        .routes(routes!(release))
        .routes(routes!(hold))
        .routes(routes!(retry))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItemView {
    pub id: String,
    pub tenant: Option<String>,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub pool: String,
    /// `queued`, `deferred`, `held` or `quarantined`.
    #[schema(value_type = String)]
    pub state: MessageState,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub received_at: i64,
    pub last_reply: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// `held`, `quarantined`, `deferred` or `queued`; all when absent.
    pub state: Option<String>,
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub id: String,
    /// Header fields in order, unfolded values as sent.
    pub headers: Vec<(String, String)>,
    /// The first text part (HTML-only messages: mail-parser's text rendering of it).
    pub text: String,
    pub truncated: bool,
}

async fn envelopes(s: &AppState, ids: Vec<String>) -> Vec<Option<Envelope>> {
    let spool = s.relay.spool.clone();
    tokio::task::spawn_blocking(move || ids.iter().map(|id| spool.read_envelope(id).ok()).collect())
        .await
        .unwrap_or_default()
}

/// The queue as a caller may see it, optionally one state only.
pub async fn visible_items(
    s: &AppState,
    caller: &Caller,
    state: Option<MessageState>,
    tenant: Option<&str>,
) -> ApiResult<Vec<QueueItemView>> {
    let scope = caller.list_scope(tenant)?;
    let items: Vec<QueueItem> = s
        .relay
        .queue
        .list()
        .into_iter()
        .filter(|i| state.is_none_or(|st| i.state == st))
        .collect();
    let envs = envelopes(s, items.iter().map(|i| i.id.clone()).collect()).await;
    Ok(items
        .into_iter()
        .zip(envs)
        .filter_map(|(i, env)| {
            let tenant = env.and_then(|e| e.tenant);
            scope
                .as_deref()
                .is_none_or(|t| tenant.as_deref() == Some(t))
                .then_some(QueueItemView {
                    id: i.id,
                    tenant,
                    mail_from: i.mail_from,
                    rcpts: i.rcpts,
                    pool: i.pool,
                    state: i.state,
                    attempts: i.attempts,
                    next_attempt_at: i.next_attempt_at,
                    received_at: i.received_at,
                    last_reply: i.last_reply,
                })
        })
        .collect())
}

/// 404 unless the message is queued here and the caller may see its tenant.
pub async fn visible_one(s: &AppState, caller: &Caller, id: &str) -> ApiResult<Envelope> {
    let missing = || ApiError::not_found(format!("message {id} is not in the queue"));
    if !s.relay.queue.list().iter().any(|i| i.id == id) {
        return Err(missing());
    }
    let env = envelopes(s, vec![id.to_string()])
        .await
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(missing)?;
    if caller.sees(env.tenant.as_deref()) {
        Ok(env)
    } else {
        Err(missing())
    }
}

#[utoipa::path(get, path = "/api/v1/queue", tag = "queue", params(QueueQuery),
    responses((status = 200, body = Vec<QueueItemView>), (status = 400, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<QueueQuery>,
) -> ApiResult<Json<Vec<QueueItemView>>> {
    let state = match q.state.as_deref().filter(|x| !x.is_empty()) {
        Some(x) => Some(
            MessageState::parse(x)
                .ok_or_else(|| ApiError::bad_request(format!("state: unknown state {x:?}")))?,
        ),
        None => None,
    };
    Ok(Json(
        visible_items(&s, &caller, state, q.tenant.as_deref()).await?,
    ))
}

/// Headers and text of a queued message.
pub async fn preview_of(s: &AppState, caller: &Caller, id: &str) -> ApiResult<Preview> {
    let env = visible_one(s, caller, id).await?;
    let spool = s.relay.spool.clone();
    let body = tokio::task::spawn_blocking(move || spool.read_body(&env.id))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let Some(msg) = mail_parser::MessageParser::default().parse(&body) else {
        return Ok(Preview {
            id: id.to_string(),
            headers: Vec::new(),
            text: String::new(),
            truncated: false,
        });
    };
    let headers = msg
        .headers_raw()
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    let mut text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let truncated = text.len() > PREVIEW_TEXT_MAX;
    if truncated {
        let mut cut = PREVIEW_TEXT_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Ok(Preview {
        id: id.to_string(),
        headers,
        text,
        truncated,
    })
}

#[utoipa::path(get, path = "/api/v1/queue/{id}/preview", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, body = Preview), (status = 404, body = ErrorBody)))]
async fn preview(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Preview>> {
    Ok(Json(preview_of(&s, &caller, &id).await?))
}

pub use crate::ops::queue::Action;

/// The running server's queue as the management layer reaches it (`ops::queue::Queue`): a
/// message is queued here when the queue lists it; its tenant is read from the spooled envelope.
pub struct RelayQueue<'a>(pub &'a outguard_relay::server::Relay);

impl ops::queue::Queue for RelayQueue<'_> {
    async fn tenant_of(&self, id: &str) -> Result<Option<String>, OpsError> {
        if !self.0.queue.list().iter().any(|i| i.id == id) {
            return Err(ops::queue::not_queued(id));
        }
        let spool = self.0.spool.clone();
        let owned = id.to_string();
        let env = tokio::task::spawn_blocking(move || spool.read_envelope(&owned))
            .await
            .map_err(|e| OpsError::Internal(e.to_string()))?
            .map_err(|_| ops::queue::not_queued(id))?;
        Ok(env.tenant)
    }

    async fn apply(&self, id: &str, action: Action) -> Result<(), OpsError> {
        let q = &self.0.queue;
        match action {
            Action::Release => q.release(id).await?,
            Action::Hold => q.hold(id).await?,
            Action::Retry => q.retry_now(id).await?,
            Action::Delete => q.delete(id).await?,
        }
        Ok(())
    }

    async fn held_of(&self, subject: &outguard_policy::Subject) -> Result<Vec<String>, OpsError> {
        let held: Vec<String> = self
            .0
            .queue
            .list()
            .into_iter()
            .filter(|i| i.state == MessageState::Held)
            .map(|i| i.id)
            .collect();
        let spool = self.0.spool.clone();
        let subject = subject.clone();
        tokio::task::spawn_blocking(move || {
            held.into_iter()
                .filter(|id| {
                    spool
                        .read_envelope(id)
                        .is_ok_and(|env| outguard_relay::enforce::lift::belongs_to(&env, &subject))
                })
                .collect()
        })
        .await
        .map_err(|e| OpsError::Internal(e.to_string()))
    }

    async fn restrictions_changed(&self) {
        outguard_relay::enforce::refresh_restrictions_now(self.0).await;
    }
}

/// Applies `action` to one message (`ops::queue::act`; shared with the UI's forms).
pub async fn act(s: &AppState, caller: &Caller, id: &str, action: Action) -> ApiResult<()> {
    let q = RelayQueue(&s.relay);
    Ok(ops::queue::act(&s.relay.store, &caller.ops_actor(), &q, id, action).await?)
}

#[utoipa::path(delete, path = "/api/v1/queue/{id}", tag = "queue", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    act(&s, &caller, &id, Action::Delete)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/queue/{id}/release", tag = "queue", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn release(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    act(&s, &caller, &id, Action::Release)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/queue/{id}/hold", tag = "queue", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn hold(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    act(&s, &caller, &id, Action::Hold)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/queue/{id}/retry", tag = "queue", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    act(&s, &caller, &id, Action::Retry)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}
