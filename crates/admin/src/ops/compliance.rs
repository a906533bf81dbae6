//! The bulk-sender compliance report (issue 25 part 4), read by `GET /api/v1/compliance` and
//! the UI's compliance page: per tenant, its bulk streams (From domain, why bulk, messages and
//! the top provider's recipients in the last 24 hours, each check's latest outcome, the latest
//! failure as a sample) and its complaint rate over `[fbl] window` against the mailbox
//! providers' lines, 0.1 % (target) and 0.3 % (never reach). A tenant role sees its own tenant
//! only (another reads like a missing one); an operator every tenant, or the one asked for.

use std::collections::BTreeMap;

use outguard_policy::bulk;
use outguard_policy::decide::keys;
use outguard_relay::fbl::rates::{COMPLAINT, SENT};
use outguard_relay::server::Relay;
use outguard_store::BulkStream;
use outguard_types::model::Millis;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Actor, OpsError};

/// The providers' target complaint (spam) rate: 0.1 %.
pub const TARGET_RATE: f64 = 0.001;
/// The rate a bulk sender must never reach: 0.3 %.
pub const LIMIT_RATE: f64 = 0.003;

/// The latest failure of a stream.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailureSample {
    pub at: i64,
    pub message_id: String,
    pub detail: String,
}

/// One bulk stream of a tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamView {
    pub from_domain: String,
    /// Why it is bulk (the latest message's reason).
    pub why: String,
    /// Messages from this domain in the last 24 hours (bulk or not).
    pub messages_per_day: u64,
    /// The provider with the most recipients in the last 24 hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_provider: Option<String>,
    pub top_provider_recipients_per_day: u64,
    /// Check → `pass` / `fail` / `unknown`, for the latest bulk message.
    #[schema(value_type = Object)]
    pub checks: BTreeMap<String, String>,
    /// `none`, `warn`, `high-risk` or `reject`: what the latest bulk message got.
    pub last_action: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<FailureSample>,
}

/// A tenant's complaint rate over the window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComplaintRate {
    pub complaints: u64,
    /// Recipients sent in the window.
    pub sent: u64,
    /// complaints / sent (None when nothing was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub target: f64,
    pub limit: f64,
    /// `ok` (under 0.1 %), `above_target` (0.1 % or more), `above_limit` (0.3 % or more), or
    /// `no_mail`.
    pub status: String,
    pub window_hours: u64,
}

/// A tenant's compliance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantCompliance {
    pub tenant: String,
    pub complaint_rate: ComplaintRate,
    pub streams: Vec<StreamView>,
}

/// Where a rate stands against the providers' lines.
pub fn status(complaints: u64, sent: u64) -> (Option<f64>, &'static str) {
    if sent == 0 {
        return (None, "no_mail");
    }
    let rate = complaints as f64 / sent as f64;
    let s = if rate >= LIMIT_RATE {
        "above_limit"
    } else if rate >= TARGET_RATE {
        "above_target"
    } else {
        "ok"
    };
    (Some(rate), s)
}

async fn complaint_rate(relay: &Relay, tenant: &str, now: Millis) -> ComplaintRate {
    let w = i64::try_from(relay.cfg.fbl.window.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let c = &relay.enforcer.counters;
    let complaints = c
        .count(&keys::tenant(tenant, COMPLAINT), w, now)
        .await
        .unwrap_or(0);
    let sent = c
        .count(&keys::tenant(tenant, SENT), w, now)
        .await
        .unwrap_or(0);
    let (rate, status) = status(complaints, sent);
    ComplaintRate {
        complaints,
        sent,
        rate,
        target: TARGET_RATE,
        limit: LIMIT_RATE,
        status: status.into(),
        window_hours: relay.cfg.fbl.window.as_secs() / 3600,
    }
}

async fn stream_view(relay: &Relay, s: BulkStream, now: Millis) -> StreamView {
    let providers: Vec<String> = relay
        .cfg
        .bulk
        .providers
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let volume = bulk::count(
        &*relay.enforcer.signals,
        &s.tenant,
        &s.from_domain,
        &[],
        &providers,
        0,
        now,
    )
    .await
    .unwrap_or_default();
    let checks: BTreeMap<String, String> = serde_json::from_str(&s.checks).unwrap_or_default();
    let last_failure = match (s.failed_at, s.failed_message_id, s.failed_detail) {
        (Some(at), Some(message_id), Some(detail)) => Some(FailureSample {
            at,
            message_id,
            detail,
        }),
        _ => None,
    };
    let (top_provider, top_n) = volume.top_provider.unzip();
    StreamView {
        from_domain: s.from_domain,
        why: s.why,
        messages_per_day: volume.messages,
        top_provider,
        top_provider_recipients_per_day: top_n.unwrap_or(0),
        checks,
        last_action: s.last_action,
        first_seen: s.first_seen,
        last_seen: s.last_seen,
        last_message_id: s.last_message_id,
        last_failure,
    }
}

/// The report for the tenants `actor` may see (`tenant`: only that one).
pub async fn report(
    relay: &Relay,
    actor: &Actor,
    tenant: Option<&str>,
    now: Millis,
) -> Result<Vec<TenantCompliance>, OpsError> {
    let store = &relay.store;
    let tenants: Vec<String> = match (tenant, actor.tenant.as_deref()) {
        (Some(t), _) => {
            actor.require_tenant(t)?;
            if store.tenant(t).await?.is_none() {
                return Err(OpsError::NotFound(format!("tenant {t} not found")));
            }
            vec![t.to_string()]
        }
        (None, own) if !actor.is_operator() => vec![own.unwrap_or("").to_string()],
        (None, _) => store
            .list_tenants()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect(),
    };
    let scope = match &tenants[..] {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let mut streams: BTreeMap<String, Vec<BulkStream>> = BTreeMap::new();
    for s in store.list_bulk_streams(scope).await? {
        streams.entry(s.tenant.clone()).or_default().push(s);
    }
    let mut out = Vec::with_capacity(tenants.len());
    for t in tenants {
        let mut views = Vec::new();
        for s in streams.remove(&t).unwrap_or_default() {
            views.push(stream_view(relay, s, now).await);
        }
        out.push(TenantCompliance {
            complaint_rate: complaint_rate(relay, &t, now).await,
            tenant: t,
            streams: views,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_against_the_lines() {
        assert_eq!(status(0, 0), (None, "no_mail"));
        assert_eq!(status(0, 1000).1, "ok");
        assert_eq!(status(1, 1001).1, "ok");
        assert_eq!(status(1, 1000).1, "above_target");
        assert_eq!(status(2, 1000).1, "above_target");
        assert_eq!(status(3, 1000).1, "above_limit");
        assert_eq!(status(30, 1000), (Some(0.03), "above_limit"));
    }
}
