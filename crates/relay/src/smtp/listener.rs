//! Accept loops, one per configured listener: a connection semaphore per listener (`421 4.7.0`
//! when full) and a session cap per client address (`421 4.7.0 Too many connections from your
//! address`, SPEC §9), implicit TLS for `submissions`, connector admission by source IP, and a
//! draining mode that answers `421 4.3.2` to new sessions while in-flight ones finish. Accept
//! errors (out of descriptors) are waited out (`server::accept`), never fatal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use outguard_proto::{ListenerKind, Reply};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use super::conn::Conn;
use super::identity::Identity;
use super::stream::ClientStream;
use crate::server::Relay;
use crate::server::accept::{AcceptErrors, accept};
use crate::server::conn_limit::PerIpLimit;

pub struct Bound {
    pub kind: ListenerKind,
    pub listener: TcpListener,
}

/// Bind every configured SMTP listener (before anything starts, so a busy port fails start-up).
pub async fn bind_all(relay: &Relay) -> anyhow::Result<Vec<Bound>> {
    let l = &relay.cfg.listeners;
    let mut out = Vec::new();
    for (kind, addr) in [
        (ListenerKind::Submission, l.submission),
        (ListenerKind::Submissions, l.submissions),
        (ListenerKind::Connector, l.connector),
        (ListenerKind::Fbl, l.fbl),
    ] {
        if let Some(addr) = addr {
            let listener = listen(addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({}): {e}", kind.as_str()))?;
            let local = listener.local_addr()?;
            println!("listening: {} smtp://{local}", kind.as_str());
            out.push(Bound { kind, listener });
        }
    }
    Ok(out)
}

/// Pending connections the kernel may queue before we accept them (capped by
/// `net.core.somaxconn`). A burst larger than the queue would leave clients with a handshake
/// the kernel dropped and no greeting ever; a deep queue lets every one of them be answered,
/// with `421 4.7.0` past the connection limit.
const BACKLOG: u32 = 4096;

/// A listening socket as every listener of ours opens it: `SO_REUSEADDR` (a restart rebinds at
/// once) and the same backlog.
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accept until the server stops; each session runs as its own named task.
pub async fn serve(relay: Arc<Relay>, bound: Bound) {
    let limit = Arc::new(Semaphore::new(relay.cfg.listeners.max_connections));
    let per_ip = PerIpLimit::new(relay.cfg.listeners.max_connections_per_ip);
    let kind = bound.kind;
    let mut errors = AcceptErrors::new(kind.as_str());
    loop {
        let (tcp, peer) = tokio::select! {
            a = accept(&bound.listener, &mut errors) => a,
            _ = relay.shutdown.stopped() => return,
        };
        let _ = tcp.set_nodelay(true);
        if relay.shutdown.is_draining() {
            tokio::spawn(refuse(tcp, Reply::shutting_down()));
            continue;
        }
        // The listener's own cap first: when it is full, that is the news for everyone.
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp, Reply::too_many_connections()));
            continue;
        };
        let Some(ip_permit) = per_ip.try_acquire(peer.ip()) else {
            tracing::debug!(%peer, listener = kind.as_str(), "per-address session cap reached");
            tokio::spawn(refuse(tcp, Reply::too_many_connections_from_ip()));
            continue;
        };
        let relay = relay.clone();
        let guard = relay.shutdown.in_flight();
        // The session's span is in effect across every await of the session (an entered guard
        // would not survive the first await), so each log line carries listener and peer.
        relay.metrics.session(kind.as_str());
        let span = tracing::info_span!("smtp", listener = kind.as_str(), %peer);
        tokio::spawn(
            async move {
                if let Err(e) = session(relay, tcp, peer, kind).await {
                    tracing::debug!(error = %e, "session ended with an I/O error");
                }
                drop(ip_permit);
                drop(permit);
                drop(guard);
            }
            .instrument(span),
        );
    }
}

async fn refuse(mut tcp: TcpStream, r: Reply) {
    let _ = tcp.write_all(&r.to_bytes()).await;
    let _ = tcp.shutdown().await;
}

async fn session(
    relay: Arc<Relay>,
    tcp: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
) -> std::io::Result<()> {
    let identity = match kind {
        ListenerKind::Connector => match relay.store.connector_for_ip(peer.ip()).await {
            Ok(Some(c)) => c.into(),
            Ok(None) => Identity::None,
            Err(e) => {
                tracing::error!(error = %e, "store error looking up connector");
                refuse(
                    tcp,
                    Reply::new(421, "4.3.0", "Temporary failure, try again later"),
                )
                .await;
                return Ok(());
            }
        },
        ListenerKind::Fbl => Identity::FeedbackLoop,
        _ => Identity::None,
    };
    let (stream, tls_active) = match kind {
        ListenerKind::Submissions => {
            let Some(acceptor) = relay.tls.current() else {
                return Ok(());
            };
            match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => {
                    relay.metrics.tls_session(kind.as_str());
                    (ClientStream::Tls(Box::new(s)), true)
                }
                _ => return Ok(()),
            }
        }
        _ => (ClientStream::Plain(tcp), false),
    };
    Conn::new(relay, peer, kind, tls_active, identity)
        .run(stream)
        .await
}
