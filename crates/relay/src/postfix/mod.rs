//! Outguard inside an existing Postfix (issue 23): the SMTPD access policy service
//! ([`policy`], `check_policy_service`) and the milter ([`milter`], `smtpd_milters`). Both
//! apply the decisions of our own listeners — `Relay::check_sender`, `policy_at_mail`,
//! `policy_at_rcpt`, `policy_release`, the scan and `policy_after_scan` — to transactions
//! Postfix receives; Postfix keeps its queue and delivery.
//!
//! Decisions recorded here:
//! - Postfix is trusted for who is sending (`sasl_username`, the client address): these
//!   listeners take connections only from `[policy_service] clients` (loopback by default),
//!   since anyone who may talk to them can spend an account's recipient allowance.
//! - A transaction Outguard cannot attribute (no known account, no connector for the client
//!   address) gets `[policy_service] unknown`: `dunno` (Postfix decides alone) or `reject`.

pub mod milter;
pub mod policy;

use std::net::IpAddr;
use std::sync::Arc;

use outguard_proto::Reply;
use outguard_types::config::UnknownSender;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::server::Relay;
use crate::server::accept::{AcceptErrors, accept};
use crate::smtp::identity::Identity;

/// Which of the two Postfix-facing listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostfixKind {
    Policy,
    Milter,
}

impl PostfixKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PostfixKind::Policy => "policy",
            PostfixKind::Milter => "milter",
        }
    }
}

pub struct Bound {
    pub kind: PostfixKind,
    pub listener: TcpListener,
}

/// Bind the configured policy and milter listeners (before anything starts).
pub async fn bind_all(relay: &Relay) -> anyhow::Result<Vec<Bound>> {
    let l = &relay.cfg.listeners;
    let mut out = Vec::new();
    for (kind, addr) in [
        (PostfixKind::Policy, l.policy),
        (PostfixKind::Milter, l.milter),
    ] {
        if let Some(addr) = addr {
            let listener = crate::smtp::listener::listen(addr)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({}): {e}", kind.as_str()))?;
            let local = listener.local_addr()?;
            println!("listening: {} tcp://{local}", kind.as_str());
            out.push(Bound { kind, listener });
        }
    }
    Ok(out)
}

/// Accept until the server stops (`txns` is shared by the policy and milter listeners); one
/// task per Postfix connection (Postfix keeps a few open
/// and reuses them), bounded by `listeners.max_connections`.
pub async fn serve(relay: Arc<Relay>, bound: Bound, txns: Arc<policy::PendingTxns>) {
    let limit = Arc::new(Semaphore::new(relay.cfg.listeners.max_connections));
    let kind = bound.kind;
    let mut errors = AcceptErrors::new(kind.as_str());
    // Parsed once (check-config refused any that does not parse), not on every connection.
    let clients: Vec<ipnet::IpNet> = relay
        .cfg
        .policy_service
        .clients
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    loop {
        let (tcp, peer) = tokio::select! {
            a = accept(&bound.listener, &mut errors) => a,
            _ = relay.shutdown.stopped() => return,
        };
        if !clients.iter().any(|net| net.contains(&peer.ip())) {
            tracing::warn!(%peer, listener = kind.as_str(), "connection from a client not in policy_service.clients: closed");
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, listener = kind.as_str(), "connection cap reached: closed");
            continue;
        };
        let relay = relay.clone();
        let txns = txns.clone();
        let guard = relay.shutdown.in_flight();
        tokio::spawn(async move {
            let r = match kind {
                PostfixKind::Policy => policy::run(relay, txns, tcp, peer).await,
                PostfixKind::Milter => milter::run(relay, txns, tcp, peer).await,
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, %peer, "{} connection ended with an I/O error", kind.as_str());
            }
            drop(permit);
            drop(guard);
        });
    }
}

/// Who Postfix says is sending: the account named by `sasl_username`, else the connector
/// whose CIDR holds the client address. `Ok(None)`: unknown to Outguard.
pub async fn identify(
    relay: &Relay,
    sasl_username: Option<&str>,
    client: Option<IpAddr>,
) -> Result<Option<Identity>, Reply> {
    if let Some(user) = sasl_username {
        return match relay.store.account(user).await {
            Ok(Some(a)) => Ok(Some(a.into())),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "store error looking up a Postfix SASL user");
                Err(store_trouble())
            }
        };
    }
    let Some(ip) = client else { return Ok(None) };
    match relay.store.connector_for_ip(ip).await {
        Ok(Some(c)) => Ok(Some(c.into())),
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "store error looking up a connector for Postfix");
            Err(store_trouble())
        }
    }
}

fn store_trouble() -> Reply {
    Reply::new(451, "4.3.0", "Temporary failure, try again later")
}

/// The refusal for unattributable mail under `unknown = "reject"`; `None` under `dunno`.
pub fn unknown_sender(relay: &Relay) -> Option<Reply> {
    match relay.cfg.policy_service.unknown {
        UnknownSender::Dunno => None,
        UnknownSender::Reject => Some(Reply::new(
            550,
            "5.7.1",
            "Sender unknown to Outguard (no account or connector)",
        )),
    }
}
