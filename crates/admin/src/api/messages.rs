//! `/api/v1/messages`: the message trace. Search by id, sender, recipient, time range and state,
//! newest first, with an opaque cursor for the next page; one message with its full timeline.

use axum::Json;
use axum::extract::{Path, Query, State};
use outguard_types::model::{
    MessageFilter, MessageRecord, MessageState, Millis, Submitter, TraceEvent,
};
use outguard_types::verdict::Class;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};

/// Page size when none is asked for, and the largest one allowed.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 1000;
/// Extra rows fetched past a page so messages sharing the cursor's millisecond are not lost.
const TIE_SLACK: u32 = 64;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(get_one))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub tenant: Option<String>,
    /// `{"kind":"account","id":"a@b"}`, `{"kind":"connector","id":"cidr"}` or `{"kind":"system"}`.
    #[schema(value_type = Object)]
    pub submitter: Submitter,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub header_from: Option<String>,
    pub message_id_header: Option<String>,
    pub subject: Option<String>,
    pub size: u64,
    pub received_at: i64,
    #[schema(value_type = String)]
    pub state: MessageState,
    pub pool: Option<String>,
    #[schema(value_type = Option<String>)]
    pub class: Option<Class>,
    pub score: Option<f64>,
    pub node: String,
}

impl From<MessageRecord> for MessageView {
    fn from(m: MessageRecord) -> Self {
        MessageView {
            id: m.id,
            tenant: m.tenant,
            submitter: m.submitter,
            mail_from: m.mail_from,
            rcpts: m.rcpts,
            header_from: m.header_from,
            message_id_header: m.message_id_header,
            subject: m.subject,
            size: m.size,
            received_at: m.received_at,
            state: m.state,
            pool: m.pool,
            class: m.class,
            score: m.score,
            node: m.node,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub message_id: String,
    pub at: i64,
    #[schema(value_type = String)]
    pub kind: outguard_types::model::EventKind,
    pub detail: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<TraceEvent> for EventView {
    fn from(e: TraceEvent) -> Self {
        EventView {
            message_id: e.message_id,
            at: e.at,
            kind: e.kind,
            detail: e.detail,
            data: e.data,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDetail {
    pub message: MessageView,
    /// Every trace event, oldest first.
    pub events: Vec<EventView>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    pub id: Option<String>,
    /// Envelope sender: an address, or `@domain`.
    pub from: Option<String>,
    /// A recipient: an address, or `@domain`.
    pub to: Option<String>,
    /// Unix ms or RFC 3339 (inclusive).
    pub since: Option<String>,
    /// Unix ms or RFC 3339 (exclusive).
    pub until: Option<String>,
    /// `queued`, `deferred`, `held`, `quarantined`, `delivered`, `bounced`, `rejected`, `deleted`.
    pub state: Option<String>,
    pub tenant: Option<String>,
    pub cursor: Option<String>,
    /// 1..=1000, default 50.
    pub limit: Option<u32>,
}

/// Unix milliseconds or an RFC 3339 time.
pub fn parse_time(name: &str, v: &str) -> ApiResult<Millis> {
    if let Ok(ms) = v.parse::<Millis>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(v).map_err(|_| {
        ApiError::bad_request(format!(
            "{name}: expected Unix milliseconds or an RFC 3339 time, got {v:?}"
        ))
    })?;
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX))
}

fn parse_cursor(c: &str) -> ApiResult<(Millis, String)> {
    let bad = || ApiError::bad_request("cursor: not a cursor this server issued");
    let (at, id) = c.split_once('_').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// Builds the store filter for a caller (tenant roles always get their own tenant).
pub fn filter_of(caller: &Caller, q: &SearchQuery) -> ApiResult<MessageFilter> {
    let state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            MessageState::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("state: unknown state {s:?}")))?,
        ),
        None => None,
    };
    Ok(MessageFilter {
        id: q.id.clone().filter(|s| !s.is_empty()),
        from: q.from.clone().filter(|s| !s.is_empty()),
        to: q.to.clone().filter(|s| !s.is_empty()),
        since: q
            .since
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|v| parse_time("since", v))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|v| parse_time("until", v))
            .transpose()?,
        tenant: caller.list_scope(q.tenant.as_deref().filter(|s| !s.is_empty()))?,
        state,
        limit: None,
    })
}

/// One page of a search: newest first, strictly older than `cursor`.
pub async fn page(
    s: &AppState,
    mut f: MessageFilter,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> ApiResult<MessagePage> {
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(parse_cursor)
        .transpose()?;
    if let Some((at, _)) = &cursor {
        let bound = at.saturating_add(1);
        f.until = Some(f.until.map_or(bound, |u| u.min(bound)));
    }
    f.limit = Some(limit as u32 + 1 + TIE_SLACK);
    let rows = s.relay.store.search_messages(&f).await?;
    let mut rows: Vec<MessageRecord> = rows
        .into_iter()
        .filter(|m| match &cursor {
            Some((at, id)) => m.received_at < *at || (m.received_at == *at && m.id < *id),
            None => true,
        })
        .take(limit + 1)
        .collect();
    let next_cursor = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last().map(|m| format!("{}_{}", m.received_at, m.id))
    });
    Ok(MessagePage {
        messages: rows.into_iter().map(Into::into).collect(),
        next_cursor: next_cursor.flatten(),
    })
}

#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", params(SearchQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn search(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<MessagePage>> {
    let f = filter_of(&caller, &q)?;
    Ok(Json(page(&s, f, q.cursor.as_deref(), q.limit).await?))
}

/// One message and its timeline, if the caller may see it.
pub async fn detail(s: &AppState, caller: &Caller, id: &str) -> ApiResult<MessageDetail> {
    let m = match s.relay.store.message(id).await? {
        Some(m) if caller.sees(m.tenant.as_deref()) => m,
        _ => return Err(ApiError::not_found(format!("message {id} not found"))),
    };
    let events = s.relay.store.events(id).await?;
    Ok(MessageDetail {
        message: m.into(),
        events: events.into_iter().map(Into::into).collect(),
    })
}

#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = MessageDetail), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageDetail>> {
    Ok(Json(detail(&s, &caller, &id).await?))
}
