//! The compliance page (issue 25 part 4): per tenant the user may see, the complaint rate
//! against the mailbox providers' 0.1 % / 0.3 % lines, and each bulk stream with its checks'
//! latest outcome and the latest failure. Read only; the actions per check are policy keys
//! (the Policies page). Goes through `ops::compliance` like the API.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use outguard_policy::bulk::Check;

use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::TenantQuery;
use crate::api::error::ApiError;
use crate::ops;
use crate::ops::compliance::{ComplaintRate, TenantCompliance};

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_string(), |r| format!("{:.3} %", r * 100.0))
}

fn rate_line(c: &ComplaintRate) -> Markup {
    let said = match c.status.as_str() {
        "above_limit" => "at or above the 0.3 % line providers hold bulk senders to",
        "above_target" => "above the 0.1 % target, under the 0.3 % line",
        "ok" => "under the 0.1 % target",
        _ => "no mail sent in the window",
    };
    html! {
        p.rate data-status=(c.status) {
            "Complaint rate over the last " (c.window_hours) " hours: "
            strong { (percent(c.rate)) } " (" (c.complaints) " complaints / " (c.sent) " recipients), " (said) "."
        }
    }
}

fn tenant_section(t: &TenantCompliance) -> Markup {
    html! {
        section aria-labelledby=(format!("t-{}", t.tenant)) {
            h2 id=(format!("t-{}", t.tenant)) { "Tenant " (t.tenant) }
            (rate_line(&t.complaint_rate))
            @if t.streams.is_empty() { p { "No bulk streams seen." } } @else {
                table {
                    caption { "Bulk streams of " (t.tenant) }
                    thead { tr {
                        th scope="col" { "From domain" } th scope="col" { "Why bulk" }
                        th scope="col" { "Messages, 24 h" } th scope="col" { "Top provider, 24 h" }
                        @for c in Check::ALL { th scope="col" { (c.as_str()) } }
                        th scope="col" { "Last action" } th scope="col" { "Last seen" }
                        th scope="col" { "Last failure" }
                    } }
                    tbody { @for s in &t.streams { tr {
                        td { (s.from_domain) }
                        td { (s.why) }
                        td { (s.messages_per_day) }
                        td { @if let Some(p) = &s.top_provider { (p) ": " (s.top_provider_recipients_per_day) } @else { "–" } }
                        @for c in Check::ALL {
                            @let v = s.checks.get(c.as_str()).map_or("–", String::as_str);
                            td data-check=(c.as_str()) { (v) }
                        }
                        td { (s.last_action) }
                        td { (when(s.last_seen)) }
                        td { @if let Some(f) = &s.last_failure {
                            (when(f.at)) ", " a href=(format!("/trace/{}", f.message_id)) { (f.message_id) } ": " (f.detail)
                        } @else { "never" } }
                    } } }
                }
            }
        }
    }
}

pub async fn show(
    State(s): State<AppState>,
    user: UiUser,
    Query(q): Query<TenantQuery>,
) -> Response {
    let tenant = q.tenant.as_deref().filter(|t| !t.is_empty());
    let actor = user.caller.ops_actor();
    let now = s.relay.clock.now_ms();
    let report = match ops::compliance::report(&s.relay, &actor, tenant, now).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&user), ApiError::from(e)),
    };
    let body = html! {
        p { "Mailbox providers (Gmail, Yahoo, Outlook.com) ask bulk senders for an aligned DKIM signature, SPF, a DMARC record and one-click unsubscribe, and a complaint rate under 0.3 % (target 0.1 %). A stream is bulk when its mail carries List-Unsubscribe or Precedence: bulk/list, or when it sends more than the configured number of recipients a day to one provider." }
        @for t in &report { (tenant_section(t)) }
    };
    page("Bulk sender compliance", Some(&user), body).into_response()
}
