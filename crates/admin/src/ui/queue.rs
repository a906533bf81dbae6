//! Held and quarantined messages: a list with release and delete buttons (POST forms carrying
//! the CSRF token), and a preview showing headers and the text part as escaped text only.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use outguard_types::model::MessageState;
use serde::Deserialize;

use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::queue::{Action, QueueItemView, act as api_act, preview_of, visible_items};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub tenant: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ActForm {
    pub csrf: Option<String>,
    pub action: String,
}

fn table(user: &UiUser, caption: &str, items: &[QueueItemView]) -> maud::Markup {
    html! {
        @if items.is_empty() { p { "None." } } @else {
            table {
                caption { (caption) }
                thead { tr { th scope="col" { "Received" } th scope="col" { "Id" } th scope="col" { "Tenant" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Actions" } } }
                tbody {
                    @for i in items {
                        tr {
                            td { (when(i.received_at)) }
                            td { a href=(format!("/queue/{}", i.id)) { (i.id) } }
                            td { (i.tenant.as_deref().unwrap_or("-")) }
                            td { (i.mail_from) }
                            td { (i.rcpts.join(", ")) }
                            td {
                                @for (action, label) in [("release", "Release"), ("delete", "Delete")] {
                                    form.inline method="post" action=(format!("/queue/{}", i.id)) {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        input type="hidden" name="action" value=(action);
                                        button type="submit" aria-label=(format!("{label} message {}", i.id)) { (label) }
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn list(State(s): State<AppState>, user: UiUser, Query(q): Query<ListQuery>) -> Response {
    let tenant = q.tenant.as_deref().filter(|t| !t.is_empty());
    let held = visible_items(&s, &user.caller, Some(MessageState::Held), tenant).await;
    let quarantined =
        visible_items(&s, &user.caller, Some(MessageState::Quarantined), tenant).await;
    let (held, quarantined) = match (held, quarantined) {
        (Ok(h), Ok(qu)) => (h, qu),
        (Err(e), _) | (_, Err(e)) => return error_page(Some(&user), e),
    };
    let body = html! {
        h2 { "Held" }
        (table(&user, "Held messages", &held))
        h2 { "Quarantined" }
        (table(&user, "Quarantined messages", &quarantined))
    };
    page("Held and quarantined", Some(&user), body).into_response()
}

pub async fn preview(State(s): State<AppState>, user: UiUser, Path(id): Path<String>) -> Response {
    let p = match preview_of(&s, &user.caller, &id).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(&user), e),
    };
    let body = html! {
        h2 { "Headers" }
        table {
            caption { "Header fields as received" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
            tbody { @for (n, v) in &p.headers { tr { td { (n) } td { (v) } } } }
        }
        h2 { "Text" }
        pre { (p.text) }
        @if p.truncated { p { "(cut at 64 KB)" } }
        form.inline method="post" action=(format!("/queue/{}", p.id)) {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="action" value="release";
            button type="submit" { "Release" }
        }
        " "
        form.inline method="post" action=(format!("/queue/{}", p.id)) {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="action" value="delete";
            button type="submit" { "Delete" }
        }
    };
    page(&format!("Message {}", p.id), Some(&user), body).into_response()
}

pub async fn act(
    State(s): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    Form(f): Form<ActForm>,
) -> Response {
    if let Err(r) = user.check_csrf(f.csrf.as_deref()) {
        return r.into_response();
    }
    let Some(action) = Action::parse(&f.action) else {
        return error_page(
            Some(&user),
            ApiError::bad_request(format!("unknown action {:?}", f.action)),
        );
    };
    match api_act(&s, &user.caller, &id, action).await {
        Ok(()) => Redirect::to("/queue").into_response(),
        Err(e) => error_page(Some(&user), e),
    }
}
