//! The HTTP listener (admin API, UI and metrics live here as they land). Today: `/healthz`.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use super::Relay;

pub async fn bind(relay: &Relay) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = relay.cfg.listeners.http else { return Ok(None) };
    let l = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr} (http): {e}"))?;
    println!("listening: http http://{}", l.local_addr()?);
    Ok(Some(l))
}

pub async fn serve(relay: Arc<Relay>, listener: TcpListener) {
    let app = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let stop = relay.shutdown.clone();
    let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.stopped().await }).await;
}
