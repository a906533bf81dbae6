//! The dashboard: one tenant's last 24 hours (an operator picks the tenant, or sees all; a tenant
//! role only ever sees its own): messages per hour by disposition and by pool, the spam ratio,
//! feedback-loop complaints per hour and per account, and the top senders. Every number comes
//! from grouped store queries (no row limit to hit), every chart has its data table.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use outguard_store::{HourlyVolume, SenderVolume};
use outguard_types::model::Millis;
use serde::Deserialize;

use super::chart::{self, Hours, Spec};
use super::layout::{error_page, page};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::stats::{DAY_MS, TOP_SENDERS};

/// Dispositions in the order the charts stack them (final states at the bottom).
const DISPOSITIONS: [&str; 8] = [
    "delivered",
    "queued",
    "deferred",
    "held",
    "quarantined",
    "bounced",
    "rejected",
    "deleted",
];
/// Accounts listed in the complaints table.
const TOP_COMPLAINERS: u32 = 10;

#[derive(Debug, Default, Deserialize)]
pub struct DashQuery {
    pub tenant: Option<String>,
}

/// Everything the dashboard shows for one scope and window.
struct Data {
    since: Millis,
    until: Millis,
    volume: Vec<HourlyVolume>,
    top: Vec<SenderVolume>,
    complaints: Vec<(Millis, u64)>,
    by_account: Vec<(String, String, u64)>,
}

async fn load(s: &AppState, scope: Option<&str>, until: Millis) -> Result<Data, ApiError> {
    let store = &s.relay.store;
    let since = until - DAY_MS;
    let limit = u32::try_from(TOP_SENDERS).unwrap_or(10);
    Ok(Data {
        since,
        until,
        volume: store.hourly_volume(scope, since, until).await?,
        top: store.top_senders(scope, since, until, limit).await?,
        complaints: store.complaints_by_hour(scope, since, until).await?,
        by_account: store
            .complaints_by_account(scope, since, until, TOP_COMPLAINERS)
            .await?,
    })
}

/// The charts and tables for `d` (pure).
fn render(d: &Data) -> Markup {
    let mut by_state = chart::empty_hours(d.since, d.until);
    let mut by_pool = chart::empty_hours(d.since, d.until);
    let mut spam: BTreeMap<i64, (u64, u64)> = by_state.keys().map(|h| (*h, (0, 0))).collect();
    for v in &d.volume {
        let add = |hours: &mut Hours, key: &str| {
            *hours
                .entry(v.hour)
                .or_default()
                .entry(key.to_string())
                .or_default() += v.messages;
        };
        add(&mut by_state, v.state.as_str());
        add(&mut by_pool, v.pool.as_deref().unwrap_or("-"));
        let e = spam.entry(v.hour).or_default();
        e.0 += v.spam;
        e.1 += v.messages;
    }
    let mut complaints = chart::empty_hours(d.since, d.until);
    for (hour, n) in &d.complaints {
        *complaints
            .entry(*hour)
            .or_default()
            .entry("complaints".into())
            .or_default() += n;
    }
    let total: u64 = d.volume.iter().map(|v| v.messages).sum();
    let spam_total: u64 = d.volume.iter().map(|v| v.spam).sum();
    let complaint_total: u64 = d.complaints.iter().map(|(_, n)| n).sum();
    html! {
        h2 { "Last 24 hours" }
        p id="totals" { (total) " messages, " (spam_total) " called spam ("
            (format!("{:.1} %", 100.0 * spam_total as f64 / total.max(1) as f64)) "), "
            (complaint_total) " complaints." }
        // Two charts a row on a wide page, one on a narrow one: they use the page's width.
        div.charts {
            (chart::stacked(&Spec { id: "by-disposition", title: "Messages per hour by disposition", y_label: "Messages" }, &by_state, &DISPOSITIONS))
            (chart::stacked(&Spec { id: "by-pool", title: "Messages per hour by pool", y_label: "Messages" }, &by_pool, &["regular", "high-risk", "relay"]))
            (chart::ratio_line(&Spec { id: "spam-ratio", title: "Spam ratio per hour", y_label: "Spam %" }, &spam))
            (chart::stacked(&Spec { id: "complaints", title: "Complaints per hour", y_label: "Complaints" }, &complaints, &[]))
        }
        h2 { "Complaints by account" }
        @if d.by_account.is_empty() { p { "No complaints attributed to an account in this window." } } @else {
            table id="complaints-by-account" {
                caption { "Feedback-loop complaints per account, last 24 hours" }
                thead { tr { th scope="col" { "Account" } th scope="col" { "Tenant" } th scope="col" { "Complaints" } } }
                tbody {
                    @for (tenant, account, n) in &d.by_account {
                        tr { td { (account) } td { (tenant) } td { (n) } }
                    }
                }
            }
        }
        h2 { "Top senders" }
        @if d.top.is_empty() { p { "No mail in this window." } } @else {
            table id="top-senders" {
                caption { "Busiest envelope senders, last 24 hours" }
                thead { tr { th scope="col" { "Sender" } th scope="col" { "Messages" } th scope="col" { "Spam" } th scope="col" { "Spam ratio" } } }
                tbody {
                    @for t in &d.top {
                        tr {
                            td { a href=(format!("/trace?from={}", super::trace::enc(&t.sender))) { (t.sender) } }
                            td { (t.messages) } td { (t.spam) }
                            td { (format!("{:.0} %", 100.0 * t.spam as f64 / t.messages.max(1) as f64)) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page_handler(s: &AppState, user: &UiUser, tenant: Option<String>) -> Response {
    let tenant = tenant.filter(|t| !t.is_empty());
    let scope = match user.caller.list_scope(tenant.as_deref()) {
        Ok(scope) => scope,
        Err(e) => return error_page(Some(user), e),
    };
    let data = match load(s, scope.as_deref(), s.relay.clock.now_ms()).await {
        Ok(d) => d,
        Err(e) => return error_page(Some(user), e),
    };
    let tenants = match user.caller.scope() {
        Some(own) => vec![own.to_string()],
        None => s
            .relay
            .store
            .list_tenants()
            .await
            .map(|v| v.into_iter().map(|t| t.name).collect())
            .unwrap_or_default(),
    };
    let title = match &scope {
        Some(t) => format!("Dashboard: tenant {t}"),
        None => "Dashboard: all tenants".to_string(),
    };
    let body = html! {
        @if user.caller.scope().is_none() {
            form method="get" action="/" {
                label for="tenant" { "Tenant" }
                select id="tenant" name="tenant" {
                    option value="" { "All tenants" }
                    @for t in &tenants {
                        option value=(t) selected[scope.as_deref() == Some(t.as_str())] { (t) }
                    }
                }
                " " button type="submit" { "Show" }
            }
        }
        (render(&data))
    };
    page(&title, Some(user), body).into_response()
}

pub async fn show(State(s): State<AppState>, user: UiUser, Query(q): Query<DashQuery>) -> Response {
    page_handler(&s, &user, q.tenant).await
}
