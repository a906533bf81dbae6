//! The dashboard: one tenant's last 24 hours (an operator picks the tenant, or sees all):
//! messages per hour by pool as an SVG chart, with the same numbers in a table, and totals.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::chart;
use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::stats::{StatsQuery, compute};
use crate::trace::now_ms;

#[derive(Debug, Default, Deserialize)]
pub struct DashQuery {
    pub tenant: Option<String>,
}

pub async fn page_handler(s: &AppState, user: &UiUser, tenant: Option<String>) -> Response {
    let tenant = tenant.filter(|t| !t.is_empty());
    let q = StatsQuery {
        tenant: tenant.clone(),
        ..StatsQuery::default()
    };
    let stats = match compute(s, &user.caller, &q, now_ms()).await {
        Ok(st) => st,
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
    let shown = user.caller.scope().map(str::to_string).or(tenant);
    let hours = chart::per_hour(&stats.buckets, stats.since, stats.until);
    let total: u64 = stats.buckets.iter().map(|b| b.messages).sum();
    let spam: u64 = stats.buckets.iter().map(|b| b.spam).sum();
    let title = match &shown {
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
                        option value=(t) selected[shown.as_deref() == Some(t.as_str())] { (t) }
                    }
                }
                " " button type="submit" { "Show" }
            }
        }
        h2 { "Last 24 hours" }
        p { (total) " messages, " (spam) " called spam ("
            (format!("{:.1} %", 100.0 * spam as f64 / total.max(1) as f64)) ")"
            @if stats.truncated { " (more than one query reads; counts are a floor)" } "." }
        (chart::bars("Messages per hour by pool", &hours))
        h2 { "Top senders" }
        @if stats.top_senders.is_empty() { p { "No mail in this window." } } @else {
            table {
                caption { "Busiest envelope senders, last 24 hours" }
                thead { tr { th scope="col" { "Sender" } th scope="col" { "Messages" } th scope="col" { "Spam" } th scope="col" { "Spam ratio" } } }
                tbody {
                    @for t in &stats.top_senders {
                        tr {
                            td { a href=(format!("/trace?from={}", super::trace::enc(&t.sender))) { (t.sender) } }
                            td { (t.messages) } td { (t.spam) }
                            td { (format!("{:.0} %", 100.0 * t.spam as f64 / t.messages.max(1) as f64)) }
                        }
                    }
                }
            }
        }
        h2 { "Per hour" }
        table {
            caption { "Messages per hour and pool" }
            thead { tr { th scope="col" { "Hour" } th scope="col" { "Tenant" } th scope="col" { "Pool" } th scope="col" { "Messages" } th scope="col" { "Spam" } } }
            tbody {
                @for b in &stats.buckets {
                    tr {
                        td { (when(b.start)) }
                        td { (b.tenant.as_deref().unwrap_or("-")) }
                        td { (b.pool.as_deref().unwrap_or("-")) }
                        td { (b.messages) }
                        td { (b.spam) }
                    }
                }
            }
        }
    };
    page(&title, Some(user), body).into_response()
}

pub async fn show(State(s): State<AppState>, user: UiUser, Query(q): Query<DashQuery>) -> Response {
    page_handler(&s, &user, q.tenant).await
}
