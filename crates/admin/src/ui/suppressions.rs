//! Suppressed recipients (issue 25): the recipients the user's tenant(s) may not mail because
//! they hard-bounced or an admin added them, with until when and why, each with a remove button
//! (CSRF; tenant admins and operators). Goes through `ops::suppressions` like the API.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use outguard_types::time::now_ms;
use serde::Deserialize;

use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::TenantQuery;
use crate::api::error::ApiError;
use crate::ops;

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    pub csrf: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    user: UiUser,
    Query(q): Query<TenantQuery>,
) -> Response {
    let tenant = q.tenant.as_deref().filter(|t| !t.is_empty());
    let actor = user.caller.ops_actor();
    let list = match ops::suppressions::list(&s.relay.store, &actor, tenant, now_ms(), 1000).await {
        Ok(l) => l,
        Err(e) => return error_page(Some(&user), ApiError::from(e)),
    };
    let can_remove = user.caller.require_write().is_ok();
    let body = html! {
        p { "A recipient that hard-bounced (5.1.x) is refused at RCPT with 550 5.1.1 for its tenant until the time shown. Sends to them count against the sender." }
        @if list.is_empty() { p { "No suppressed recipients." } } @else {
            table {
                caption { "Suppressed recipients, newest first" }
                thead { tr {
                    th scope="col" { "Tenant" } th scope="col" { "Recipient" } th scope="col" { "Source" }
                    th scope="col" { "Since" } th scope="col" { "Until" } th scope="col" { "Reason" }
                    @if can_remove { th scope="col" { "Remove" } }
                } }
                tbody { @for x in &list { tr {
                    td { (x.tenant) }
                    td { (x.recipient) }
                    td { (x.source) }
                    td { (when(x.created_at)) }
                    td { (when(x.until)) }
                    td { (x.reason) }
                    @if can_remove { td {
                        form.inline method="post" action=(format!("/suppressions/{}/{}/remove", x.tenant, x.recipient)) {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" aria-label=(format!("Remove the suppression of {}", x.recipient)) { "Remove" }
                        }
                    } }
                } } }
            }
        }
    };
    page("Suppressed recipients", Some(&user), body).into_response()
}

pub async fn remove(
    State(s): State<AppState>,
    user: UiUser,
    Path((tenant, recipient)): Path<(String, String)>,
    Form(f): Form<RemoveForm>,
) -> Response {
    if let Err(r) = user.check_csrf(f.csrf.as_deref()) {
        return r.into_response();
    }
    let actor = user.caller.ops_actor();
    match ops::suppressions::remove(&s.relay.store, &actor, &tenant, &recipient).await {
        Ok(()) => Redirect::to("/suppressions").into_response(),
        Err(e) => error_page(Some(&user), ApiError::from(e)),
    }
}
