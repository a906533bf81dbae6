//! Policies: a tenant's default and custom outbound spam policies (SPEC §2.4), and an edit form
//! for the tenant default (one labelled field per SPEC §8 key — a select for the enum and
//! boolean keys, text otherwise; empty = unset, CSRF) beside the value in force and the
//! operator's ceiling for tenant admins. Operators pick the tenant; tenant roles see their own.
//! Saving goes through the API's `put_settings`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use outguard_types::ceilings::{OPERATOR_ONLY_KEYS, PolicyCeilings};
use outguard_types::policy::{EffectivePolicy, POLICY_KEYS, PolicySettings};
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

/// The choices of a key with a fixed set of values (`None`: free text). The empty choice is
/// "unset": the service default applies.
fn choices(key: &str) -> Option<&'static [&'static str]> {
    match key {
        "action_when_threshold_reached" | "action_when_spam_threshold_reached" => {
            Some(&["alert", "block_user_for_today", "block_user"])
        }
        "quarantine" | "bcc_suspicious_outbound_mail" => Some(&["true", "false"]),
        "bulk_dkim_action"
        | "bulk_spf_action"
        | "bulk_dmarc_action"
        | "bulk_unsubscribe_action" => Some(&["warn", "high-risk", "reject"]),
        _ => None,
    }
}

/// Each key's value in force for the tenant's accounts (the tenant default over the service's
/// `[policy.default]` over the built-in defaults), in [`POLICY_KEYS`] order.
fn in_force(e: &EffectivePolicy) -> [String; 18] {
    let list = |l: &[String]| {
        if l.is_empty() {
            "none".to_string()
        } else {
            l.join(", ")
        }
    };
    [
        e.external_per_hour.to_string(),
        e.internal_per_hour.to_string(),
        e.per_day.to_string(),
        e.action.as_str().to_string(),
        e.spam_action.as_str().to_string(),
        e.spam_messages_per_hour.to_string(),
        e.spam_ratio.to_string(),
        e.tenant_spam_messages_per_hour.to_string(),
        e.reject_score
            .map_or_else(|| "never refused".to_string(), |v| v.to_string()),
        e.quarantine.to_string(),
        e.bcc_suspicious_outbound_mail.to_string(),
        list(&e.bcc_recipients),
        list(&e.notify_recipients),
        e.max_unblocks_per_day.to_string(),
        e.bulk.dkim.as_str().to_string(),
        e.bulk.spf.as_str().to_string(),
        e.bulk.dmarc.as_str().to_string(),
        e.bulk.unsubscribe.as_str().to_string(),
    ]
}

/// The highest value a tenant admin may give `key` (`[policy.ceilings]`), or why there is none.
fn ceiling(c: &PolicyCeilings, key: &str) -> String {
    if OPERATOR_ONLY_KEYS.contains(&key) {
        return "operator only".into();
    }
    match key {
        "recipient_limit_external_per_hour" => c.recipient_limit_external_per_hour.to_string(),
        "recipient_limit_internal_per_hour" => c.recipient_limit_internal_per_hour.to_string(),
        "recipient_limit_per_day" => c.recipient_limit_per_day.to_string(),
        "spam_messages_per_hour" => c.spam_messages_per_hour.to_string(),
        "spam_ratio" => c.spam_ratio.to_string(),
        "reject_score" => c
            .reject_score
            .map_or_else(|| "none".to_string(), |v| v.to_string()),
        k if k.starts_with("bulk_") => format!("at least {}", c.bulk_min_action.as_str()),
        _ => "-".into(),
    }
}

fn control(key: &str, value: Option<&str>) -> Markup {
    html! {
        @if let Some(options) = choices(key) {
            select id=(key) name=(key) {
                option value="" selected[value.is_none()] { "(unset: service default)" }
                @for o in options {
                    option value=(o) selected[value == Some(*o)] { (o) }
                }
            }
        } @else {
            input id=(key) type="text" name=(key) value=(value.unwrap_or_default()) size="20";
        }
    }
}

fn edit_form(
    user: &UiUser,
    tenant: &str,
    default: &PolicySettings,
    forced: &[String; 18],
    ceilings: &PolicyCeilings,
) -> Markup {
    html! {
        form method="post" action=(format!("/policies/{tenant}/default")) {
            input type="hidden" name="csrf" value=(user.csrf);
            fieldset {
                legend { "Default policy of " (tenant) " (empty = service default)" }
                div.scroll {
                    table #policy-form {
                        thead { tr {
                            th scope="col" { "Key" } th scope="col" { "Tenant default" }
                            th scope="col" { "In force" }
                            th scope="col" { "Ceiling for tenant admins" }
                        } }
                        tbody {
                            @for ((key, value), now) in default.entries().into_iter().zip(forced) {
                                tr {
                                    th scope="row" { label for=(key) { (key) } }
                                    td { (control(key, value.as_deref())) }
                                    td { (now) }
                                    td { (ceiling(ceilings, key)) }
                                }
                            }
                        }
                    }
                }
                p { "In force: the tenant default, else the service's [policy.default], else the built-in default. Operators are not capped by the ceilings." }
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
    let cfg = &s.relay.cfg;
    let forced = in_force(&default.resolve(&default, &cfg.policy.default));
    let body = html! {
        @if q.saved.is_some() { p role="status" { "The default policy was saved." } }
        div.scroll { table {
            caption { "Policies of " (tenant) ", first match wins" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Priority" } th scope="col" { "Applies to" } th scope="col" { "Settings" } } }
            tbody { @for p in &list { tr {
                th scope="row" { (p.name) }
                td { (p.priority.map_or_else(|| "last".to_string(), |n| n.to_string())) }
                td { (scope_text(p)) }
                td { (set_keys(&p.settings)) }
            } } }
        } }
        @if user.caller.require_write().is_ok() {
            (edit_form(&user, &tenant, &default, &forced, &cfg.policy.ceilings))
        }
        (super::simulate::form(&user, &tenant))
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
