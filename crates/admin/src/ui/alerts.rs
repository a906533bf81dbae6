//! Alerts: the recorded alerts the user may see, newest first, filterable by kind, each with an
//! acknowledge button (CSRF). Goes through the API's `alerts::visible` / `acknowledge`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use outguard_policy::alerts::ALERT_KINDS;
use serde::Deserialize;

use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::alerts::{AlertsQuery, acknowledge, visible};

#[derive(Debug, Deserialize)]
pub struct AckForm {
    pub csrf: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    user: UiUser,
    Query(q): Query<AlertsQuery>,
) -> Response {
    let alerts = match visible(&s, &user.caller, &q).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&user), e),
    };
    let chosen = q.kind.clone().unwrap_or_default();
    let body = html! {
        form method="get" action="/alerts" {
            label for="kind" { "Kind" }
            select id="kind" name="kind" {
                option value="" selected[chosen.is_empty()] { "all" }
                @for k in ALERT_KINDS { option value=(k.as_str()) selected[chosen == k.as_str()] { (k.as_str()) } }
            }
            " " button type="submit" { "Filter" }
        }
        @if alerts.is_empty() { p { "No alerts." } } @else {
            table {
                caption { "Alerts, newest first" }
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "Severity" }
                    th scope="col" { "Tenant" } th scope="col" { "Subject" } th scope="col" { "Summary" }
                    th scope="col" { "Acknowledged" }
                } }
                tbody { @for a in &alerts { tr {
                    td { (when(a.alert.created_at)) }
                    td { (a.alert.kind.as_str()) }
                    td { (format!("{:?}", a.alert.severity).to_lowercase()) }
                    td { (a.alert.tenant.as_deref().unwrap_or("(service)")) }
                    td { (a.alert.subject.as_ref().map_or("-", |s| s.id())) }
                    td { (a.alert.summary) }
                    td { @if a.acknowledged { "yes" } @else {
                        form.inline method="post" action=(format!("/alerts/{}/ack", a.id)) {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" aria-label=(format!("Acknowledge alert {}", a.id)) { "Acknowledge" }
                        }
                    } }
                } } }
            }
        }
    };
    page("Alerts", Some(&user), body).into_response()
}

pub async fn ack(
    State(s): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    Form(f): Form<AckForm>,
) -> Response {
    if let Err(r) = user.check_csrf(f.csrf.as_deref()) {
        return r.into_response();
    }
    match acknowledge(&s, &user.caller, &id).await {
        Ok(()) => Redirect::to("/alerts").into_response(),
        Err(e) => error_page(Some(&user), e),
    }
}
