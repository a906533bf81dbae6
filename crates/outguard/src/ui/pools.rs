//! The IP pools page: each pool's EHLO name, source IPs and whether each is in rotation.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::page;
use super::session::UiUser;
use crate::api::AppState;
use crate::api::pools::pools;

pub async fn page_handler(State(s): State<AppState>, user: UiUser) -> Response {
    let all = pools(&s);
    let body = html! {
        @for p in &all {
            h2 { (p.name) }
            p { "EHLO " code { (p.ehlo) } ", " (p.queued) " messages queued on this node." }
            table {
                caption { "Source IPs of pool " (p.name) }
                thead { tr { th scope="col" { "IP" } th scope="col" { "Status" } } }
                tbody {
                    @for ip in &p.ips {
                        tr { td { (ip.ip) } td { @if ip.healthy { "in rotation" } @else { "out of rotation" } } }
                    }
                }
            }
        }
    };
    page("IP pools", Some(&user), body).into_response()
}
