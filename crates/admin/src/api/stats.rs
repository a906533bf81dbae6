//! `/api/v1/stats`: message volume per tenant, hour and pool (and how many of those the scanner
//! called spam), computed from the message trace over a time window (default: the last 24 h).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use outguard_types::model::{MessageFilter, MessageRecord, Millis, Submitter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiResult, ErrorBody};
use super::messages::parse_time;

pub const HOUR_MS: Millis = 3_600_000;
pub const DAY_MS: Millis = 24 * HOUR_MS;
const DEFAULT_WINDOW: Millis = 24 * HOUR_MS;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(volume))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    pub tenant: Option<String>,
    /// Unix ms or RFC 3339; default 24 h before `until`.
    pub since: Option<String>,
    /// Unix ms or RFC 3339; default now.
    pub until: Option<String>,
    /// `hour` (default) or `day` (UTC days).
    pub bucket: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    pub tenant: Option<String>,
    /// Start of the bucket (hour or UTC day), Unix ms.
    pub start: i64,
    pub pool: Option<String>,
    pub messages: u64,
    /// Of those, classed suspicious or spam.
    pub spam: u64,
}

/// One envelope sender's volume in the window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SenderCount {
    pub sender: String,
    pub messages: u64,
    pub spam: u64,
}

/// How many senders [`Stats::top_senders`] lists.
pub const TOP_SENDERS: usize = 10;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    pub since: i64,
    pub until: i64,
    /// `hour` or `day`.
    pub bucket: String,
    pub buckets: Vec<Bucket>,
    /// The busiest envelope senders, most messages first.
    pub top_senders: Vec<SenderCount>,
    /// True when the window held more messages than one query reads (the counts are a floor).
    pub truncated: bool,
}

/// (tenant, bucket start, pool).
type BucketKey = (Option<String>, Millis, Option<String>);

/// Groups messages by (tenant, bucket of `width` ms, pool), ordered by tenant, start, pool. Pure.
pub fn bucketize(messages: &[MessageRecord], width: Millis) -> Vec<Bucket> {
    let mut map: BTreeMap<BucketKey, (u64, u64)> = BTreeMap::new();
    for m in messages {
        let start = m.received_at.div_euclid(width) * width;
        let e = map
            .entry((m.tenant.clone(), start, m.pool.clone()))
            .or_default();
        e.0 += 1;
        e.1 += u64::from(m.class.is_some_and(|c| c.is_spam()));
    }
    map.into_iter()
        .map(|((tenant, start, pool), (messages, spam))| Bucket {
            tenant,
            start,
            pool,
            messages,
            spam,
        })
        .collect()
}

/// The tenants' own traffic: mail Outguard generated (notifications, DSNs) is the service's, not
/// the tenant's, and is neither charted nor listed as a sender. Pure.
pub fn tenant_traffic(rows: Vec<MessageRecord>) -> Vec<MessageRecord> {
    rows.into_iter()
        .filter(|m| !matches!(m.submitter, Submitter::System))
        .collect()
}

/// The `n` senders with the most messages (ties by address). Pure.
pub fn top_senders(messages: &[MessageRecord], n: usize) -> Vec<SenderCount> {
    let mut map: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for m in messages {
        let e = map.entry(m.mail_from.as_str()).or_default();
        e.0 += 1;
        e.1 += u64::from(m.class.is_some_and(|c| c.is_spam()));
    }
    let mut v: Vec<SenderCount> = map
        .into_iter()
        .map(|(s, (messages, spam))| SenderCount {
            sender: s.to_string(),
            messages,
            spam,
        })
        .collect();
    v.sort_by(|a, b| {
        b.messages
            .cmp(&a.messages)
            .then_with(|| a.sender.cmp(&b.sender))
    });
    v.truncate(n);
    v
}

/// Volume statistics for a caller over `[since, until)`.
pub async fn compute(
    s: &AppState,
    caller: &Caller,
    q: &StatsQuery,
    now: Millis,
) -> ApiResult<Stats> {
    let (bucket, width) = match q.bucket.as_deref() {
        None | Some("" | "hour") => ("hour", HOUR_MS),
        Some("day") => ("day", DAY_MS),
        Some(other) => {
            return Err(super::error::ApiError::bad_request(format!(
                "bucket: expected hour or day, got {other:?}"
            )));
        }
    };
    let until = q
        .until
        .as_deref()
        .map(|v| parse_time("until", v))
        .transpose()?
        .unwrap_or(now);
    let since = q
        .since
        .as_deref()
        .map(|v| parse_time("since", v))
        .transpose()?
        .unwrap_or(until - DEFAULT_WINDOW);
    let f = MessageFilter {
        since: Some(since),
        until: Some(until),
        tenant: caller.list_scope(q.tenant.as_deref())?,
        limit: Some(outguard_store::MAX_SEARCH_LIMIT),
        ..Default::default()
    };
    let rows = s.relay.store.search_messages(&f).await?;
    let truncated = rows.len() as u32 >= outguard_store::MAX_SEARCH_LIMIT;
    let rows = tenant_traffic(rows);
    Ok(Stats {
        since,
        until,
        bucket: bucket.to_string(),
        buckets: bucketize(&rows, width),
        top_senders: top_senders(&rows, TOP_SENDERS),
        truncated,
    })
}

#[utoipa::path(get, path = "/api/v1/stats", tag = "stats", params(StatsQuery),
    responses((status = 200, body = Stats), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn volume(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Json<Stats>> {
    Ok(Json(
        compute(&s, &caller, &q, s.relay.clock.now_ms()).await?,
    ))
}

#[cfg(test)]
mod tests {
    use outguard_types::model::MessageState;
    use outguard_types::verdict::Class;

    use super::*;

    fn m(tenant: &str, from: &str, at: Millis, pool: &str, class: Option<Class>) -> MessageRecord {
        MessageRecord {
            id: format!("{from}{at}"),
            tenant: Some(tenant.into()),
            submitter: Submitter::Account(from.into()),
            mail_from: from.into(),
            rcpts: vec![],
            header_from: None,
            message_id_header: None,
            subject: None,
            size: 1,
            received_at: at,
            state: MessageState::Delivered,
            pool: Some(pool.into()),
            class,
            score: None,
            node: "n".into(),
            body_digest: None,
        }
    }

    #[test]
    fn buckets_and_top_senders() {
        let rows = vec![
            m("a", "x@a", 10, "regular", None),
            m("a", "x@a", HOUR_MS - 1, "regular", Some(Class::Spam)),
            m("a", "y@a", HOUR_MS, "regular", Some(Class::Clean)),
            m(
                "a",
                "y@a",
                HOUR_MS + 5,
                "high-risk",
                Some(Class::Suspicious),
            ),
            m("b", "z@b", 20, "regular", None),
        ];
        let b = bucketize(&rows, HOUR_MS);
        assert_eq!(
            bucketize(&rows, DAY_MS).len(),
            3,
            "a: regular + high-risk, b: regular"
        );
        let bucket = |t: &str, h: Millis, p: &str| {
            b.iter()
                .find(|x| {
                    x.tenant.as_deref() == Some(t) && x.start == h && x.pool.as_deref() == Some(p)
                })
                .map(|x| (x.messages, x.spam))
        };
        assert_eq!(bucket("a", 0, "regular"), Some((2, 1)));
        assert_eq!(bucket("a", HOUR_MS, "regular"), Some((1, 0)));
        assert_eq!(bucket("a", HOUR_MS, "high-risk"), Some((1, 1)));
        assert_eq!(bucket("b", 0, "regular"), Some((1, 0)));
        assert_eq!(b.len(), 4);
        let top = top_senders(&rows, 2);
        assert_eq!(
            top.iter()
                .map(|s| (s.sender.as_str(), s.messages, s.spam))
                .collect::<Vec<_>>(),
            vec![("x@a", 2, 1), ("y@a", 2, 1)]
        );
    }

    #[test]
    fn the_relays_own_mail_is_not_tenant_traffic() {
        let mut notice = m("a", "postmaster@relay.test", 10, "regular", None);
        notice.submitter = Submitter::System;
        let rows = tenant_traffic(vec![notice, m("a", "x@a", 20, "regular", None)]);
        assert_eq!(rows.len(), 1);
        assert_eq!(top_senders(&rows, 5)[0].sender, "x@a");
    }
}
