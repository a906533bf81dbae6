//! Restricted users: the restrictions in force that the user may see (reason, the numbers,
//! top spam reasons, sample messages linked to their trace, until when), each with a lift form
//! (reason required, CSRF, "also release held mail"). The lift goes through the API's
//! `lift_address`, so the role and `max_unblocks_per_day` rules are the API's. While the trust
//! ramp is on (`[trust_ramp]`, issue 25), a second table lists the visible accounts whose
//! limits it reduces today.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use outguard_policy::Subject;
use outguard_policy::ramp::Ramp;
use outguard_store::StoredRestriction;
use serde::Deserialize;

use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::restricted::{LiftRequest, lift_address, visible};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub tenant: Option<String>,
    /// Set after a lift: the subject just lifted (shown as a status message).
    pub lifted: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LiftForm {
    pub csrf: Option<String>,
    pub reason: Option<String>,
    pub release_held: Option<String>,
}

fn kind(s: &Subject) -> &'static str {
    match s {
        Subject::Account(_) => "account",
        Subject::Connector(_) => "connector",
        Subject::Tenant(_) => "tenant",
    }
}

/// A field id safe for `id`/`for` attributes (row index based).
fn field(row: usize, name: &str) -> String {
    format!("r{row}-{name}")
}

fn lift_form(user: &UiUser, row: usize, subject: &str) -> Markup {
    let action = format!("/restricted/{}/lift", urlencoding(subject));
    html! {
        form.lift method="post" action=(action) {
            input type="hidden" name="csrf" value=(user.csrf);
            label for=(field(row, "reason")) { "Reason for lifting " (subject) }
            input id=(field(row, "reason")) type="text" name="reason" required minlength="1";
            span {
                input id=(field(row, "held")) type="checkbox" name="release_held" value="on";
                " "
                label for=(field(row, "held")) { "Release held mail" }
            }
            button type="submit" aria-label=(format!("Lift restriction of {subject}")) { "Lift" }
        }
    }
}

/// Percent-encodes a path segment (addresses contain `@`, CIDRs `/`).
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Five columns, so the table and its Lift forms fit a 1400 px page (issue 20: ten columns and
/// an inline form pushed Lift out of the window); narrower windows break cells' text instead
/// of scrolling the page.
fn table(user: &UiUser, list: &[StoredRestriction]) -> Markup {
    html! {
        table #restrictions {
            caption { "Restrictions in force" }
            thead { tr {
                th scope="col" { "Subject" } th scope="col" { "Reason and counts" }
                th scope="col" { "Evidence" } th scope="col" { "Since / until" }
                th scope="col" { "Lift" }
            } }
            tbody {
                @for (row, s) in list.iter().enumerate() {
                    @let r = &s.restriction;
                    tr {
                        th scope="row" {
                            (r.subject.id())
                            br; small { (kind(&r.subject)) " of tenant " (r.tenant) }
                        }
                        td {
                            strong { (r.reason.limit.describe()) }
                            ul { @for m in &r.reason.counts { li { (m.to_string()) } } }
                        }
                        td {
                            @if r.reason.top_spam_reasons.is_empty() && r.reason.sample_message_ids.is_empty() { "-" }
                            @if !r.reason.top_spam_reasons.is_empty() {
                                "Top spam reasons:"
                                ul { @for t in &r.reason.top_spam_reasons { li { (t) } } }
                            }
                            @if !r.reason.sample_message_ids.is_empty() {
                                "Sample messages:"
                                ul { @for id in &r.reason.sample_message_ids {
                                    li { a href=(format!("/trace/{}", urlencoding(id))) { (id) } } } }
                            }
                        }
                        td {
                            (when(r.created_at)) br;
                            (r.until.map_or_else(|| "until lifted".to_string(), when))
                        }
                        td { (lift_form(user, row, r.subject.id())) }
                    }
                }
            }
        }
    }
}

/// At most this many accounts are looked at for the ramp table (one counter-store read each).
const RAMP_SCAN: usize = 5000;

/// The visible accounts on the trust ramp now, and whether the scan stopped at [`RAMP_SCAN`].
async fn on_ramp(
    s: &AppState,
    user: &UiUser,
    tenant: Option<&str>,
) -> Result<(Vec<(String, String, Ramp)>, bool), crate::api::error::ApiError> {
    if !s.relay.cfg.trust_ramp.enabled {
        return Ok((Vec::new(), false));
    }
    let scope = user.caller.list_scope(tenant)?;
    let accounts = s.relay.store.list_accounts(scope.as_deref()).await?;
    let now = s.relay.clock.now_ms();
    let mut out = Vec::new();
    for a in accounts.iter().take(RAMP_SCAN) {
        if let Some(r) = s.relay.account_ramp(&a.address, a.created_at, now).await {
            out.push((a.address.clone(), a.tenant.clone(), r));
        }
    }
    Ok((out, accounts.len() > RAMP_SCAN))
}

fn ramp_table(rows: &[(String, String, Ramp)], cut: bool) -> Markup {
    html! {
        table #trust-ramp {
            caption { "Accounts on the trust ramp (reduced recipient limits)" }
            thead { tr {
                th scope="col" { "Account" } th scope="col" { "Clean day" }
                th scope="col" { "Limits today" }
            } }
            tbody {
                @for (address, tenant, r) in rows {
                    tr {
                        th scope="row" { (address) br; small { "of tenant " (tenant) } }
                        td { (r.day + 1) " of " (r.days) }
                        td { (format!("{:.0} %", r.factor * 100.0)) " of the policy's" }
                    }
                }
            }
        }
        @if cut { p { "Only the first " (RAMP_SCAN) " accounts were looked at." } }
    }
}

pub async fn list(State(s): State<AppState>, user: UiUser, Query(q): Query<ListQuery>) -> Response {
    let tenant = q.tenant.as_deref().filter(|t| !t.is_empty());
    let list = match visible(&s, &user.caller, tenant, false).await {
        Ok(l) => l,
        Err(e) => return error_page(Some(&user), e),
    };
    let (ramp, cut) = match on_ramp(&s, &user, tenant).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&user), e),
    };
    let body = html! {
        @if let Some(who) = q.lifted.as_deref().filter(|w| !w.is_empty()) {
            p role="status" { "The restriction of " (who) " was lifted." }
        }
        @if list.is_empty() { p { "No account, connector or tenant is restricted." } }
        @else { (table(&user, &list)) }
        @if !ramp.is_empty() { (ramp_table(&ramp, cut)) }
    };
    page("Restricted users", Some(&user), body).into_response()
}

pub async fn lift(
    State(s): State<AppState>,
    user: UiUser,
    Path(subject): Path<String>,
    Form(f): Form<LiftForm>,
) -> Response {
    if let Err(r) = user.check_csrf(f.csrf.as_deref()) {
        return r.into_response();
    }
    let req = LiftRequest {
        reason: f.reason,
        release_held: f.release_held.is_some(),
    };
    match lift_address(&s, &user.caller, &subject, &req).await {
        Ok(_) => {
            Redirect::to(&format!("/restricted?lifted={}", urlencoding(&subject))).into_response()
        }
        Err(e) => error_page(Some(&user), e),
    }
}
