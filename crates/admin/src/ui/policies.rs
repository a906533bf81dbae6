//! Policies: a tenant's default and custom outbound spam policies (SPEC §2.4), and an edit form
//! for the tenant default (one labelled field per SPEC §8 key; empty = unset, CSRF). Operators
//! pick the tenant; tenant roles see their own. Saving goes through the API's `put_settings`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use outguard_types::policy::{POLICY_KEYS, PolicySettings};
use serde::Deserialize;

use super::layout::{error_page, page};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::policies::{PolicyView, put_settings, tenant_policies};

#[derive(Debug, Default, Deserialize)]
pub struct PolicyQuery {
    pub tenant: Option<String>,
    pub saved: Option<String>,
}

fn set_keys(s: &PolicySettings) -> String {
    let set: Vec<String> = s
        .entries()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    if set.is_empty() {
        "(nothing set)".into()
    } else {
        set.join("; ")
    }
}

fn scope_text(p: &PolicyView) -> String {
    let Some(s) = &p.scope else {
        return "everyone else".into();
    };
    let mut parts = Vec::new();
    for (label, list) in [
        ("senders", &s.senders),
        ("domains", &s.domains),
        ("except senders", &s.except_senders),
        ("except domains", &s.except_domains),
    ] {
        if !list.is_empty() {
            parts.push(format!("{label}: {}", list.join(", ")));
        }
    }
    parts.join("; ")
}

fn edit_form(user: &UiUser, tenant: &str, default: &PolicySettings) -> Markup {
    html! {
        form method="post" action=(format!("/policies/{tenant}/default")) {
            input type="hidden" name="csrf" value=(user.csrf);
            fieldset {
                legend { "Default policy of " (tenant) " (empty = service default)" }
                dl {
                    @for (key, value) in default.entries() {
                        dt { label for=(key) { (key) } }
                        dd { input id=(key) type="text" name=(key) value=(value.unwrap_or_default()); }
                    }
                }
                button type="submit" { "Save default policy" }
            }
        }
    }
}

pub async fn show(
    State(s): State<AppState>,
    user: UiUser,
    Query(q): Query<PolicyQuery>,
) -> Response {
    let asked = q.tenant.as_deref().filter(|t| !t.is_empty());
    let tenant = match user.caller.target_tenant(asked) {
        Ok(t) => t,
        Err(_) => {
            let body = html! {
                form method="get" action="/policies" {
                    label for="tenant" { "Tenant" }
                    input id="tenant" type="text" name="tenant" required;
                    " " button type="submit" { "Show policies" }
                }
            };
            return page("Policies", Some(&user), body).into_response();
        }
    };
    let list = match tenant_policies(&s, &user.caller, &tenant).await {
        Ok(l) => l,
        Err(e) => return error_page(Some(&user), e),
    };
    let default = list.first().map(|p| p.settings.clone()).unwrap_or_default();
    let body = html! {
        @if q.saved.is_some() { p role="status" { "The default policy was saved." } }
        table {
            caption { "Policies of " (tenant) ", first match wins" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Priority" } th scope="col" { "Applies to" } th scope="col" { "Settings" } } }
            tbody { @for p in &list { tr {
                th scope="row" { (p.name) }
                td { (p.priority.map_or_else(|| "last".to_string(), |n| n.to_string())) }
                td { (scope_text(p)) }
                td { (set_keys(&p.settings)) }
            } } }
        }
        @if user.caller.require_write().is_ok() { (edit_form(&user, &tenant, &default)) }
    };
    page(&format!("Policies of {tenant}"), Some(&user), body).into_response()
}

pub async fn save_default(
    State(s): State<AppState>,
    user: UiUser,
    Path(tenant): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if let Err(r) = user.check_csrf(csrf) {
        return r.into_response();
    }
    let mut settings = PolicySettings::default();
    for (k, v) in fields.iter().filter(|(k, _)| k != "csrf") {
        if !POLICY_KEYS.contains(&k.as_str()) {
            return error_page(
                Some(&user),
                ApiError::invalid(format!("unknown policy key `{k}`")),
            );
        }
        if let Err(e) = settings.set_key(k, v) {
            return error_page(Some(&user), ApiError::invalid(e));
        }
    }
    match put_settings(&s, &user.caller, &tenant, "default", settings).await {
        Ok(_) => Redirect::to(&format!("/policies?tenant={tenant}&saved=1")).into_response(),
        Err(e) => error_page(Some(&user), e),
    }
}
