//! The page shell shared by every UI page: skip link, navigation, one `h1`, the logout form, and
//! a small stylesheet. Error pages for API errors met while rendering.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::UiUser;
use crate::api::error::ApiError;

// Every page fits its window from 390 to 1400 px and beyond without scrolling sideways (the
// browser test checks both widths): table cells may break long ids and addresses anywhere,
// form controls never exceed their container, charts share the page's width two a row, and
// the wide tables of forms scroll inside their own box (`.scroll`).
const CSS: &str = "\
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}\
header{background:#1f3a5f;color:#fff;padding:.5rem 1rem;display:flex;gap:.5rem 1rem;align-items:center;flex-wrap:wrap}\
header a{color:#fff}nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:0;padding:0}\
main{padding:1rem clamp(.5rem,2vw,1.5rem);overflow-wrap:anywhere}main>p{max-width:72rem}\
table{border-collapse:collapse;background:#fff;margin:.5rem 0;max-width:100%}\
th,td{border:1px solid #ccd;padding:.25rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
caption{text-align:left;font-weight:bold;padding:.25rem 0}\
input,select,button,textarea{max-width:100%;box-sizing:border-box}\
.scroll{overflow-x:auto;max-width:100%}figure{margin:0}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,32rem),1fr));gap:1rem 1.5rem}\
.lift{display:flex;flex-direction:column;align-items:flex-start;gap:.3rem;min-width:12rem}\
.lift input[type=text]{width:100%}.lift button{font-weight:bold;padding:.3rem 1.2rem}\
td ul{margin:0;padding-left:1.1rem}\
a:focus,button:focus,input:focus,select:focus{outline:3px solid #f5a623;outline-offset:1px}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.5rem;background:#fff;color:#000;padding:.25rem}\
.error{color:#a40000;font-weight:bold}form.inline{display:inline}label{margin-right:.25rem}\
fieldset{border:1px solid #ccd;background:#fff}pre{background:#fff;border:1px solid #ccd;padding:.5rem;white-space:pre-wrap}\
.who{margin-left:auto}dl{display:grid;grid-template-columns:fit-content(40%) minmax(0,1fr);gap:.2rem 1rem}\
dt,dd{overflow-wrap:anywhere}dd{margin:0}";

pub async fn stylesheet() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css")], CSS)
}

/// A full page. `user` is `None` on the login page.
pub fn page(title: &str, user: Option<&UiUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Outguard" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    strong { "Outguard" }
                    @if let Some(u) = user {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Dashboard" } }
                                li { a href="/trace" { "Message trace" } }
                                li { a href="/restricted" { "Restricted users" } }
                                li { a href="/queue" { "Held and quarantined" } }
                                li { a href="/alerts" { "Alerts" } }
                                li { a href="/suppressions" { "Suppressed recipients" } }
                                li { a href="/compliance" { "Bulk compliance" } }
                                li { a href="/policies" { "Policies" } }
                                li { a href="/pools" { "IP pools" } }
                            }
                        }
                        span.who {
                            (u.caller.token.role.as_str())
                            @if let Some(t) = &u.caller.token.tenant { " of " (t) }
                        }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(u.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An API error shown as a page with its status.
pub fn error_page(user: Option<&UiUser>, e: ApiError) -> Response {
    let status = e.status;
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        page(title, user, html! { p.error role="alert" { (e.message) } }),
    )
        .into_response()
}

/// A timestamp (Unix ms) as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn when(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

pub fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        page("Not found", None, html! { p { "There is no such page." } }),
    )
        .into_response()
}
