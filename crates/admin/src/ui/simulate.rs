//! "What would this change have done?" on the policies screen (issue 22): a form (span and
//! candidate values for the SPEC §8 keys; empty = as stored; CSRF like every form) posting to
//! `/policies/{tenant}/simulate`, which replays the tenant's recorded traffic with
//! `ops::simulate` — the same rules as `POST /api/v1/simulate`: anyone who may read the
//! tenant's policies, their own tenant only — and shows the restrictions the candidate makes,
//! the difference from what happened, the refused recipients, and a chart of restrictions per
//! day, real beside simulated. Read-only.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use outguard_policy::simulate::{SimReport, SimRestriction, per_day};
use outguard_types::policy::POLICY_KEYS;
use outguard_types::time::now_ms;

use super::chart::{Spec, daily_pairs};
use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::ops;
use crate::ops::simulate::{ServiceSettings, SimulateRequest};

/// The spans offered.
const SPANS: [(&str, &str); 3] = [
    ("1d", "last day"),
    ("7d", "last week"),
    ("31d", "last 31 days"),
];

/// The form, shown under the tenant's policies.
pub fn form(user: &UiUser, tenant: &str) -> Markup {
    html! {
        form method="post" action=(format!("/policies/{tenant}/simulate")) #simulate-form {
            input type="hidden" name="csrf" value=(user.csrf);
            fieldset {
                legend { "What would this change have done?" }
                p { "Replays the recorded traffic of " (tenant) " with the values below (empty = as stored) through the same limits the relay applies. Nothing is changed." }
                label for="since" { "Traffic of the " }
                select id="since" name="since" {
                    @for (v, label) in SPANS { option value=(v) selected[v == "7d"] { (label) } }
                }
                div.scroll { table {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Candidate value" } } }
                    tbody { @for key in POLICY_KEYS { tr {
                        th scope="row" { label for=(format!("sim-{key}")) { (key) } }
                        td { input id=(format!("sim-{key}")) type="text" name=(key) size="20"; }
                    } } }
                } }
                button type="submit" { "Simulate" }
            }
        }
    }
}

fn rows(list: &[SimRestriction]) -> Markup {
    html! {
        @for r in list { tr {
            th scope="row" { (r.subject.id()) }
            td { (r.limit.as_str()) }
            td { (when(r.at)) }
            td { (r.after_recipients.map_or_else(|| "-".to_string(), |n| n.to_string())) }
            td { (r.after_spam_messages.map_or_else(|| "-".to_string(), |n| n.to_string())) }
            td { (r.measures.join("; ")) }
        } }
    }
}

fn restriction_table(caption: &str, list: &[SimRestriction]) -> Markup {
    html! {
        div.scroll { table {
            caption { (caption) " (" (list.len()) ")" }
            thead { tr {
                th scope="col" { "Subject" } th scope="col" { "Limit" } th scope="col" { "When" }
                th scope="col" { "After recipients" } th scope="col" { "After spam" }
                th scope="col" { "Measures" }
            } }
            tbody { (rows(list)) }
        } }
    }
}

/// Real and simulated restrictions per UTC day over the whole span.
fn chart(r: &SimReport) -> Markup {
    let real: Vec<SimRestriction> = r
        .diff
        .only_real
        .iter()
        .cloned()
        .chain(r.diff.same.iter().map(|m| SimRestriction {
            at: m.real_at,
            ..m.simulated.clone()
        }))
        .collect();
    let mut days: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut d = outguard_policy::restriction::utc_day_start(r.from);
    while d < r.to && days.len() < 32 {
        days.insert(d, (0, 0));
        d += 86_400_000;
    }
    for (day, n) in per_day(&real) {
        days.entry(day).or_default().0 += n;
    }
    for (day, n) in per_day(&r.restrictions) {
        days.entry(day).or_default().1 += n;
    }
    let spec = Spec {
        id: "simulate-chart",
        title: "Restrictions per day",
        y_label: "Restrictions",
    };
    daily_pairs(&spec, &days, ("real", "simulated"))
}

fn result(tenant: &str, r: &SimReport) -> Markup {
    let d = &r.diff;
    html! {
        p role="status" {
            "Replayed " (r.transactions) " transactions of " (tenant) " (" (r.recipients) " recipients) from "
            (when(r.from)) " to " (when(r.to)) ": " (r.restrictions.len()) " restrictions, "
            (r.refused) " recipients refused. Compared with what happened: " (d.same.len()) " the same, "
            (d.only_simulated.len()) " new, " (d.only_real.len()) " that would not have happened."
        }
        (chart(r))
        (restriction_table("Restrictions with the candidate values", &r.restrictions))
        (restriction_table("New (not in the record)", &d.only_simulated))
        (restriction_table("Would not have happened", &d.only_real))
        div.scroll { table {
            caption { "Refused recipients" }
            thead { tr { th scope="col" { "Reply" } th scope="col" { "Recipients" } } }
            tbody { @for (reply, n) in &r.refused_by_reply { tr { th scope="row" { (reply) } td { (n) } } } }
        } }
        @if !r.refused_samples.is_empty() {
            div.scroll { table {
                caption { "Sample refused recipients" }
                thead { tr { th scope="col" { "When" } th scope="col" { "Sender" } th scope="col" { "Recipient" } th scope="col" { "Reply" } } }
                tbody { @for s in &r.refused_samples { tr {
                    td { (when(s.at)) } td { (s.sender) } td { (s.recipient) } td { (s.reply) }
                } } }
            } }
        }
        h2 { "What the replay cannot know" }
        ul { @for a in &r.approximations { li { (a) } } }
        p { a href=(format!("/policies?tenant={tenant}")) { "Back to the policies of " (tenant) } }
    }
}

/// `POST /policies/{tenant}/simulate`.
pub async fn run(
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
    let since = fields
        .iter()
        .find(|(k, _)| k == "since")
        .map_or("7d", |(_, v)| v.as_str());
    let pairs = fields
        .iter()
        .filter(|(k, v)| k != "csrf" && k != "since" && !v.trim().is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let outcome = async {
        let overrides = ops::simulate::overrides(pairs)?;
        let (from, to) = ops::simulate::span(since, now_ms())?;
        let cfg = &s.relay.cfg;
        let service = ServiceSettings {
            policy_default: cfg.policy.default.clone(),
            messages_per_minute: cfg.limits.messages_per_minute,
        };
        let req = SimulateRequest {
            from,
            to,
            tenant: Some(tenant.clone()),
            overrides,
        };
        ops::simulate::run(&s.relay.store, &service, &user.caller.ops_actor(), &req).await
    }
    .await;
    match outcome {
        Ok(report) => page(
            &format!("What this change would have done: {tenant}"),
            Some(&user),
            result(&tenant, &report),
        )
        .into_response(),
        Err(e) => error_page(Some(&user), ApiError::from(e)),
    }
}
