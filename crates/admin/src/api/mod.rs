//! The admin API `/api/v1` (SPEC §5): one file per resource, each exporting `routes()`, merged
//! here into one router whose OpenAPI document is generated from the same registrations
//! (utoipa-axum), so the document cannot list a route the router lacks or miss one it has.
//!
//! Adding a resource is one file plus one line in [`resources`]. The policy engine's resources
//! (`restricted`, `policies`, `alerts`) and the DNSBL/FBL ones (`dnsbl`, `fbl`, `webhooks`) plug
//! in exactly like `tenants` does: `mod restricted;` and `.merge(restricted::routes())`.

pub mod auth;
pub mod error;

mod accounts;
pub mod alerts;
mod audit;
pub mod compliance;
mod connectors;
mod dnsbl;
mod domains;
mod fbl;
pub mod messages;
pub mod policies;
pub mod pools;
pub mod queue;
pub mod restricted;
pub mod simulate;
pub mod stats;
mod suppressions;
mod tenants;
mod tokens;
mod webhooks;

#[cfg(test)]
mod compliance_tests;
#[cfg(test)]
mod portal_tests;
#[cfg(test)]
mod simulate_tests;
#[cfg(test)]
mod suppression_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::ui::session::Sessions;
use outguard_relay::server::Relay;

/// Largest request body the API and UI accept (records are small; message bodies never come in).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Shared by every API and UI handler.
#[derive(Clone)]
pub struct AppState {
    pub relay: Arc<Relay>,
    pub sessions: Arc<Sessions>,
}

impl AppState {
    pub fn new(relay: Arc<Relay>) -> AppState {
        AppState {
            sessions: Arc::new(Sessions::new(relay.store.clone())),
            relay,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Outguard admin API", version = "1", description = "Tenants, accounts, the queue and the message trace of an Outguard relay. Every call needs `Authorization: Bearer <token>`."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme =
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", scheme);
    }
}

/// Every resource of the API. One line per resource file.
fn resources() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tenants::routes())
        .merge(domains::routes())
        .merge(accounts::routes())
        .merge(connectors::routes())
        .merge(messages::routes())
        .merge(queue::routes())
        .merge(pools::routes())
        .merge(stats::routes())
        .merge(tokens::routes())
        .merge(audit::routes())
        .merge(restricted::routes())
        .merge(policies::routes())
        .merge(alerts::routes())
        .merge(fbl::routes())
        .merge(dnsbl::routes())
        .merge(webhooks::routes())
        .merge(suppressions::routes())
        .merge(simulate::routes())
        .merge(compliance::routes())
}

/// What OpenAPI requires and the annotations leave out, so generated clients and validators
/// accept the document: a `description` on every response (where an annotation gave none, most
/// `204`s and error bodies, the status's reason phrase), and operation ids unique across the
/// document (utoipa takes the handler's name, and every resource file has a `list`): the
/// resource's name comes first, `alerts_list`.
fn describe_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    for (path, item) in doc.paths.paths.iter_mut() {
        let resource = path
            .trim_start_matches("/api/v1/")
            .split('/')
            .next()
            .unwrap_or_default()
            .replace('-', "_");
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            if let Some(id) = op.operation_id.as_mut()
                && !resource.is_empty()
                && !id.starts_with(&format!("{resource}_"))
            {
                *id = format!("{resource}_{id}");
            }
            for (status, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|c| axum::http::StatusCode::from_u16(c).ok())
                        .and_then(|c| c.canonical_reason())
                        .unwrap_or("Response")
                        .to_owned();
                }
            }
        }
    }
}

/// The API router (paths are absolute, `/api/v1/...`) and its OpenAPI document, which it also
/// serves at `/api/v1/openapi.json`.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = resources().split_for_parts();
    describe_responses(&mut doc);
    let json = Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".into()));
    let router = router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let json = json.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        json.as_str().to_owned(),
                    )
                }
            }),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    (router, doc)
}

/// Query-string pagination and tenant selection shared by list calls.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// Only this tenant (operators); tenant roles always see their own.
    pub tenant: Option<String>,
}
