//! `/api/v1/pools`: the configured IP pools and, per source IP, whether delivery currently
//! uses it (an IP taken out of rotation, e.g. by a DNSBL listing, shows `healthy: false`).
//! Readable by every role: pools are shared infrastructure and hold no tenant data.

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
}

/// The pools with health and queue depth (shared with the UI).
pub fn pools(s: &AppState) -> Vec<PoolInfo> {
    let items = s.relay.queue.list();
    s.relay
        .queue
        .pools()
        .view()
        .into_iter()
        .map(|p| PoolInfo {
            queued: items.iter().filter(|i| i.pool == p.name).count(),
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
