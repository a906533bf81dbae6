//! The IP pools page: each pool's EHLO name and source IPs, whether each IP is in rotation or
//! drained, and (for operators, like `GET /api/v1/dnsbl`) its DNSBL status: the zones that list
//! it with the answer code and the zone's TXT reason, and when it was last checked. Below each
//! pool, the (source IP, destination) pairs traffic shaping has slowed or suspended, and why.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{page, when};
use super::session::UiUser;
use crate::api::AppState;
use crate::api::pools::{ShapedPair, pools};
use outguard_relay::dnsbl::IpStatus;

/// The DNSBL cells of one IP (listed zones, last check) from its monitor status.
fn dnsbl_cells(st: Option<&IpStatus>) -> Markup {
    let Some(st) = st.filter(|s| !s.zones.is_empty()) else {
        return html! { td { "not checked yet" } td { "-" } };
    };
    let listed: Vec<_> = st.zones.iter().filter(|z| z.status == "listed").collect();
    let trouble: Vec<_> = st
        .zones
        .iter()
        .filter(|z| z.status == "error" || z.status == "unknown")
        .collect();
    let last = st.zones.iter().map(|z| z.checked_at).max().unwrap_or(0);
    html! {
        td {
            @if listed.is_empty() {
                "not listed (" (st.zones.len()) " zones)"
            } @else {
                ul.listed {
                    @for z in &listed {
                        li {
                            strong.error { "listed on " (z.zone) }
                            @if let Some(code) = &z.code { " (" code { (code) } ")" }
                            @if let Some(reason) = &z.reason { ": " (reason) }
                        }
                    }
                }
            }
            @for z in &trouble {
                div { (z.zone) ": no answer (" (z.status)
                    @if let Some(r) = &z.reason { ": " (r) } ")" }
            }
        }
        td { (when(last)) }
    }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "unlimited".to_string(), |r| format!("{r:.1}/min"))
}

/// The pairs of one pool that deliver below their normal rate now.
fn shaping_table(pool: &str, pairs: &[ShapedPair]) -> Markup {
    html! {
        @if pairs.is_empty() {
            p { "Traffic shaping: every destination at its normal rate." }
        } @else {
            table {
                caption { "Destinations slowed or suspended for pool " (pool) }
                thead { tr {
                    th scope="col" { "Source IP" } th scope="col" { "Destination" }
                    th scope="col" { "State" } th scope="col" { "Rate now" }
                    th scope="col" { "Normal rate" } th scope="col" { "Since" } th scope="col" { "Why" }
                } }
                tbody {
                    @for x in pairs {
                        tr {
                            td { (x.source_ip) }
                            th scope="row" { (x.destination) }
                            td {
                                strong { (x.state) }
                                @if let Some(u) = x.suspended_until { " until " (when(u)) }
                            }
                            td { (rate(x.messages_per_minute)) }
                            td { (rate(x.normal_messages_per_minute)) }
                            td { (when(x.since)) }
                            td { code { (x.reason) } " (" (x.throttles) " throttling replies)" }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page_handler(State(s): State<AppState>, user: UiUser) -> Response {
    let all = pools(&s);
    let operator = user.caller.require_operator().is_ok();
    let dnsbl = if operator {
        match outguard_relay::dnsbl::status(&s.relay).await {
            Ok(st) => Some(st),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read DNSBL status for the pools page");
                None
            }
        }
    } else {
        None
    };
    let body = html! {
        @if operator && dnsbl.is_none() { p.error role="alert" { "The DNSBL status cannot be read right now." } }
        @for p in &all {
            h2 { (p.name) }
            p { "EHLO " code { (p.ehlo) } ", " (p.queued) " messages queued on this node." }
            table {
                caption { "Source IPs of pool " (p.name) }
                thead { tr {
                    th scope="col" { "IP" } th scope="col" { "Status" }
                    @if dnsbl.is_some() { th scope="col" { "DNSBL" } th scope="col" { "Last checked" } }
                } }
                tbody {
                    @for ip in &p.ips {
                        tr {
                            th scope="row" { (ip.ip) }
                            td { @if ip.healthy { "healthy (in rotation)" } @else { strong { "drained (out of rotation)" } } }
                            @if let Some(st) = &dnsbl {
                                (dnsbl_cells(st.iter().find(|x| x.ip == ip.ip)))
                            }
                        }
                    }
                }
            }
            (shaping_table(&p.name, &p.shaping))
        }
    };
    page("IP pools", Some(&user), body).into_response()
}
