//! `/api/v1/pools`: the configured IP pools and, per source IP, whether delivery currently
//! uses it (an IP taken out of rotation, e.g. by a DNSBL listing, shows `healthy: false`).
//! Readable by every role: pools are shared infrastructure and hold no tenant data. Each pool
//! also lists its (source IP, destination) pairs that traffic shaping has slowed or suspended
//! now, with the receiver's reply that did it (issue 22).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiResult, ErrorBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolIp {
    pub ip: String,
    pub healthy: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolInfo {
    pub name: String,
    pub ehlo: String,
    pub ips: Vec<PoolIp>,
    /// Messages of this pool in this node's queue now.
    pub queued: usize,
    /// Pairs of this pool slowed or suspended by traffic shaping now.
    pub shaping: Vec<ShapedPair>,
}

/// A (source IP, destination) pair delivering below its normal rate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShapedPair {
    pub source_ip: String,
    /// The shaping rule's destination (`*.google.com`) or the MX site.
    pub destination: String,
    /// `slowed` or `suspended`.
    pub state: String,
    /// Messages per minute now (absent: unlimited).
    pub messages_per_minute: Option<f64>,
    /// The rate it goes back to (absent: unlimited).
    pub normal_messages_per_minute: Option<f64>,
    /// Unix ms, while suspended.
    pub suspended_until: Option<i64>,
    /// The receiver's reply that slowed it.
    pub reason: String,
    /// Unix ms when it was first slowed.
    pub since: i64,
    pub throttles: u64,
}

/// The pools with health and queue depth (shared with the UI).
pub fn pools(s: &AppState) -> Vec<PoolInfo> {
    let items = s.relay.queue.list();
    let shaped = s.relay.queue.shaping().view(s.relay.queue.now_ms());
    s.relay
        .queue
        .pools()
        .view()
        .into_iter()
        .map(|p| PoolInfo {
            queued: items.iter().filter(|i| i.pool == p.name).count(),
            shaping: shaped
                .iter()
                .filter(|x| x.pool == p.name)
                .map(|x| ShapedPair {
                    source_ip: x.source_ip.clone(),
                    destination: x.destination.clone(),
                    state: x.state.as_str().to_string(),
                    messages_per_minute: x.messages_per_minute,
                    normal_messages_per_minute: x.normal_messages_per_minute,
                    suspended_until: x.suspended_until,
                    reason: x.reason.clone(),
                    since: x.since,
                    throttles: x.throttles,
                })
                .collect(),
            name: p.name,
            ehlo: p.ehlo,
            ips: p
                .ips
                .into_iter()
                .map(|(ip, healthy)| PoolIp {
                    ip: ip.to_string(),
                    healthy,
                })
                .collect(),
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/pools", tag = "pools",
    responses((status = 200, body = Vec<PoolInfo>), (status = 401, body = ErrorBody)))]
async fn list(State(s): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<PoolInfo>>> {
    Ok(Json(pools(&s)))
}
