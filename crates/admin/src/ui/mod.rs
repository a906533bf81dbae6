//! The web UI at `/` (SPEC §5): server-rendered HTML (maud), no JavaScript, plain forms. Pages:
//! login, a per-tenant dashboard with an SVG volume chart, the message trace with one message's
//! timeline, the held/quarantined queue with preview, release and delete, and the IP pools.
//! Every page goes through the same role and tenant checks as the API (it calls the API's
//! functions with the session's caller); every form carries the session's CSRF token.

pub mod session;

mod alerts;
mod chart;
mod compliance;
mod dashboard;
pub mod layout;
mod login;
mod policies;
mod pools;
mod queue;
mod restricted;
mod simulate;
mod suppressions;
mod trace;

#[cfg(test)]
mod portal_tests;
#[cfg(test)]
mod simulate_tests;
#[cfg(test)]
pub(crate) mod tests;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::response::Response;
use axum::routing::{get, post};

use crate::api::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/trace", get(trace::search))
        .route("/trace/{id}", get(trace::one))
        .route("/queue", get(queue::list))
        .route("/queue/{id}", get(queue::preview).post(queue::act))
        .route("/pools", get(pools::page_handler))
        .route("/restricted", get(restricted::list))
        .route("/restricted/{subject}/lift", post(restricted::lift))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}/ack", post(alerts::ack))
        .route("/suppressions", get(suppressions::list))
        .route(
            "/suppressions/{tenant}/{recipient}/remove",
            post(suppressions::remove),
        )
        .route("/compliance", get(compliance::show))
        .route("/policies", get(policies::show))
        .route("/policies/{tenant}/default", post(policies::save_default))
        .route("/policies/{tenant}/simulate", post(simulate::run))
        .route("/style.css", get(layout::stylesheet))
}

/// The UI runs no script at all, loads only its own stylesheet, posts forms only to itself and
/// is never framed. (Inline `style` attributes carry the chart colours, hence `'unsafe-inline'`
/// for styles only.)
const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}
