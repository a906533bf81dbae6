//! The HTTP listener: admin API (`/api/v1`, bearer tokens), web UI (`/`, sessions), `/metrics`
//! (Prometheus text) and `/healthz`. The client address is recorded for the audit log. The
//! accept loop, its caps and timeouts are in `http_listener`.

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::api::AppState;
pub use crate::http_listener::serve;
use outguard_relay::server::Relay;

pub async fn bind(relay: &Relay) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = relay.cfg.listeners.http else {
        return Ok(None);
    };
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (http): {e}"))?;
    println!("listening: http http://{}", l.local_addr()?);
    Ok(Some(l))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut text = outguard_relay::metrics::render(&s.relay, s.relay.clock.now_ms());
    match outguard_relay::dnsbl::status(&s.relay).await {
        Ok(st) => text.push_str(&outguard_relay::dnsbl::metrics_text(&st)),
        Err(e) => tracing::warn!(error = %e, "DNSBL status missing from /metrics"),
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// JSON 404 under `/api/`, an HTML page elsewhere.
async fn fallback(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        crate::api::error::ApiError::not_found("no such API route").into_response()
    } else {
        crate::ui::layout::not_found()
    }
}

/// Every HTTP route of the server, for `serve` and for in-process tests.
pub fn app(state: AppState) -> Router {
    let (api, _doc) = crate::api::router();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .merge(api)
        .merge(
            crate::ui::router().layer(axum::middleware::map_response(crate::ui::security_headers)),
        )
        .fallback(fallback)
        .layer(axum::extract::DefaultBodyLimit::max(crate::api::BODY_LIMIT))
        .with_state(state)
}

/// A complete relay on a temp dir for in-process tests, built as `serve` builds it: SQLite
/// store, spool, queue (nothing is delivered unless a test enqueues mail), no listeners.
#[cfg(test)]
pub async fn test_relay(dir: &std::path::Path) -> std::sync::Arc<Relay> {
    test_relay_with(dir, |_| {}).await
}

/// [`test_relay`] with the test's own settings on top of the defaults.
#[cfg(test)]
pub async fn test_relay_with(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut outguard_types::config::Config),
) -> std::sync::Arc<Relay> {
    use outguard_store::Store;
    use outguard_types::config::Config;

    let mut cfg = Config::default();
    edit(&mut cfg);
    cfg.server.data_dir = dir.to_path_buf();
    cfg.dns.resolver = Some("127.0.0.1:9".parse().expect("addr"));
    // The API tests subscribe loopback receivers (nothing in them is delivered anywhere else).
    cfg.webhooks.allow_private = vec![
        "127.0.0.0/8".parse().expect("cidr"),
        "::1/128".parse().expect("cidr"),
    ];
    let store = Store::open(&format!("sqlite://{}", dir.join("t.db").display()))
        .await
        .expect("store");
    let (relay, _background) = Relay::build(cfg, store, true).await.expect("relay");
    relay
}
