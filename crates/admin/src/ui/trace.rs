//! Message trace pages: a search form (id, sender, recipient, time range, state) with results
//! and cursor paging, and one message's details with its full event timeline.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{error_page, page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::messages::{SearchQuery, detail, filter_of, page as search_page};

/// Percent-encodes a query value (RFC 3986 unreserved characters and `@` pass through).
pub(super) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const STATES: [&str; 8] = [
    "queued",
    "deferred",
    "held",
    "quarantined",
    "delivered",
    "bounced",
    "rejected",
    "deleted",
];

pub async fn search(
    State(s): State<AppState>,
    user: UiUser,
    Query(q): Query<SearchQuery>,
) -> Response {
    let searched = [&q.id, &q.from, &q.to, &q.since, &q.until, &q.state]
        .iter()
        .any(|v| v.as_deref().is_some_and(|x| !x.is_empty()));
    let result = match filter_of(&user.caller, &q) {
        Ok(f) => search_page(&s, f, q.cursor.as_deref(), q.limit).await,
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => return error_page(Some(&user), e),
    };
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let next = result.next_cursor.as_ref().map(|c| {
        format!(
            "/trace?id={}&from={}&to={}&since={}&until={}&state={}&cursor={}",
            enc(&v(&q.id)),
            enc(&v(&q.from)),
            enc(&v(&q.to)),
            enc(&v(&q.since)),
            enc(&v(&q.until)),
            enc(&v(&q.state)),
            enc(c)
        )
    });
    let body = html! {
        form method="get" action="/trace" {
            fieldset {
                legend { "Search" }
                p {
                    label for="id" { "Message id" } input id="id" name="id" value=(v(&q.id));
                    " " label for="from" { "Sender" } input id="from" name="from" value=(v(&q.from)) placeholder="user@domain or @domain";
                    " " label for="to" { "Recipient" } input id="to" name="to" value=(v(&q.to));
                }
                p {
                    label for="since" { "Since" } input id="since" name="since" value=(v(&q.since)) placeholder="2026-11-23T10:00:00Z";
                    " " label for="until" { "Until" } input id="until" name="until" value=(v(&q.until));
                    " " label for="state" { "State" }
                    select id="state" name="state" {
                        option value="" { "any" }
                        @for st in STATES {
                            option value=(st) selected[q.state.as_deref() == Some(st)] { (st) }
                        }
                    }
                    " " button type="submit" { "Search" }
                }
            }
        }
        h2 { @if searched { "Results" } @else { "Latest messages" } }
        @if result.messages.is_empty() { p { "No messages match." } } @else {
            table {
                caption { (result.messages.len()) " messages, newest first" }
                thead { tr { th scope="col" { "Received" } th scope="col" { "Id" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Subject" } th scope="col" { "State" } th scope="col" { "Pool" } } }
                tbody {
                    @for m in &result.messages {
                        tr {
                            td { (when(m.received_at)) }
                            td { a href=(format!("/trace/{}", enc(&m.id))) { (m.id) } }
                            td { (m.mail_from) }
                            td { (m.rcpts.join(", ")) }
                            td { (m.subject.as_deref().unwrap_or("")) }
                            td { (m.state.as_str()) }
                            td { (m.pool.as_deref().unwrap_or("-")) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href=(n) { "Older messages" } } }
    };
    page("Message trace", Some(&user), body).into_response()
}

pub async fn one(State(s): State<AppState>, user: UiUser, Path(id): Path<String>) -> Response {
    let d = match detail(&s, &user.caller, &id).await {
        Ok(d) => d,
        Err(e) => return error_page(Some(&user), e),
    };
    let m = &d.message;
    let body = html! {
        dl {
            dt { "Id" } dd { (m.id) }
            dt { "Tenant" } dd { (m.tenant.as_deref().unwrap_or("-")) }
            dt { "Envelope sender" } dd { (m.mail_from) }
            dt { "Recipients" } dd { (m.rcpts.join(", ")) }
            dt { "Header From" } dd { (m.header_from.as_deref().unwrap_or("-")) }
            dt { "Subject" } dd { (m.subject.as_deref().unwrap_or("-")) }
            dt { "Received" } dd { (when(m.received_at)) }
            dt { "State" } dd id="state" { (m.state.as_str()) }
            dt { "Pool" } dd { (m.pool.as_deref().unwrap_or("-")) }
            dt { "Verdict" } dd {
                (m.class.map(|c| c.as_str()).unwrap_or("-"))
                @if let Some(sc) = m.score { " (score " (format!("{sc:.2}")) ")" }
            }
            dt { "Size" } dd { (m.size) " bytes" }
        }
        h2 { "Timeline" }
        ol id="timeline" {
            @for e in &d.events {
                li { time { (when(e.at)) } " — " strong { (e.kind.as_str()) } ": " (e.detail) }
            }
        }
    };
    page(&format!("Message {}", m.id), Some(&user), body).into_response()
}
