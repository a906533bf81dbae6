//! The HTTP listener's accept loop (SPEC §9 "hogging"): a cap on connections in all (`503`) and
//! per client address (`429`), a header-read timeout (a client must send a whole request header
//! within `listeners.http_header_timeout`, which also ends idle kept-alive connections), and
//! accept errors waited out (`server::accept`) so that a flood here never stops the SMTP
//! listeners or this one for good.
//!
//! `axum::serve` offers none of these, so connections are served here with hyper's HTTP/1
//! builder and its Tokio timer; the router is axum's, unchanged, and the client address is
//! handed to it as `ConnectInfo` as `axum::serve` would.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::Service as _;

use crate::api::AppState;
use crate::http::app;
use outguard_relay::server::Relay;
use outguard_relay::server::accept::{AcceptErrors, accept};
use outguard_relay::server::conn_limit::PerIpLimit;

/// A refusal written before any request is read: the status line and the API's error body.
fn refusal(status: &str, code: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 10\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn refuse(mut tcp: TcpStream, bytes: Vec<u8>) {
    // A fresh socket's send buffer takes these bytes at once; the timeout is only a backstop.
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&bytes)).await;
    let _ = tcp.shutdown().await;
}

pub async fn serve(relay: Arc<Relay>, listener: TcpListener) {
    let l = &relay.cfg.listeners;
    let total = Arc::new(Semaphore::new(l.http_max_connections));
    let per_ip = PerIpLimit::new(l.http_max_connections_per_ip);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(l.http_header_timeout);
    let router = app(AppState::new(relay.clone()));
    let stop = relay.shutdown.clone();
    let mut errors = AcceptErrors::new("http");
    loop {
        let (tcp, peer) = tokio::select! {
            a = accept(&listener, &mut errors) => a,
            _ = stop.stopped() => return,
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            let r = refusal(
                "503 Service Unavailable",
                "too_many_connections",
                "Too many connections, try again later",
            );
            tokio::spawn(refuse(tcp, r));
            continue;
        };
        let Some(ip_permit) = per_ip.try_acquire(peer.ip()) else {
            let r = refusal(
                "429 Too Many Requests",
                "too_many_connections",
                "Too many connections from your address",
            );
            tokio::spawn(refuse(tcp, r));
            continue;
        };
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let conn = builder.serve_connection(TokioIo::new(tcp), svc);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.stopped() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
            drop(ip_permit);
            drop(permit);
        });
    }
}
