//! The Postfix policy service (`check_policy_service inet:HOST:PORT`): one I/O loop per Postfix
//! connection over the sans-IO parser of `outguard_proto::policy_delegation`, and the state of
//! each SMTP transaction Postfix asks about, keyed by its `instance` attribute.
//!
//! Per `protocol_state`:
//! - `MAIL` (or the first `RCPT` of a transaction): the MAIL stage of our own listeners —
//!   `check_sender`, `policy_at_mail` (restrictions `5.1.8` / `5.7.711` / `5.7.705`, message
//!   rate `451 4.7.0`), `policy_unregistered`.
//! - `RCPT`: `policy_at_rcpt` reserves the recipient in every window (`5.2.2`, `5.1.90`);
//!   admitted recipients answer `DUNNO` so Postfix's own restrictions still apply.
//! - `END-OF-MESSAGE` (`smtpd_end_of_data_restrictions`): the transaction is complete, its
//!   reservations stay counted.
//! - Anything else: `DUNNO`.
//!
//! A transaction that never reaches END-OF-MESSAGE (RSET, QUIT, a dropped client) is given back
//! when the same connection asks about a new `instance` (a Postfix smtpd process asks about
//! one session at a time over its connection), or when it has been idle longer than
//! `listeners.session_timeout`. Closing the connection gives nothing back: Postfix may reopen
//! it in the middle of a transaction.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use outguard_proto::Reply;
use outguard_proto::policy_delegation::{Parsed, PolicyAction, PolicyParser, PolicyRequest};
use outguard_types::model::Millis;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::enforce::TxnPolicy;
use crate::server::Relay;
use crate::smtp::checks::SenderKind;
use crate::smtp::identity::Identity;

/// Transactions held at once; past it the oldest is given back.
pub const MAX_PENDING: usize = 10_000;

/// One transaction between its MAIL stage and END-OF-MESSAGE.
#[derive(Debug)]
pub struct Pending {
    identity: Identity,
    policy: TxnPolicy,
    /// Recipients already admitted (lower-cased): Postfix asks again for the same RCPT when
    /// `check_policy_service` is in more than one restriction list (sender restrictions are
    /// evaluated at RCPT under `smtpd_delay_reject`); one recipient is reserved once.
    admitted: std::collections::HashSet<String>,
    seen: Millis,
}

/// How long a completed transaction's reservations wait for the milter's verdict.
const ENDED_FOR_MS: Millis = 10 * 60 * 1000;

/// The open transactions of every Postfix connection, by `instance`, and the completed ones by
/// Postfix queue id until the milter has judged the message: Postfix asks the policy service
/// at END-OF-MESSAGE *before* its cleanup runs the milter, so a message the milter rejects
/// gives its recipients back here, as a refused message does on our own listeners.
#[derive(Debug, Default)]
pub struct PendingTxns {
    map: Mutex<HashMap<String, Pending>>,
    ended: Mutex<HashMap<String, (Millis, TxnPolicy)>>,
}

impl PendingTxns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, instance: &str) -> Option<Pending> {
        self.lock().remove(instance)
    }

    /// Store `p`; returns what must be given back (idle too long, or evicted for room).
    fn put(&self, instance: String, p: Pending, idle: Millis) -> Vec<Pending> {
        let now = p.seen;
        let mut map = self.lock();
        let stale: Vec<String> = map
            .iter()
            .filter(|(_, v)| now - v.seen > idle)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<Pending> = stale.iter().filter_map(|k| map.remove(k)).collect();
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, v)| v.seen)
                .map(|(k, _)| k.clone())
            && let Some(v) = map.remove(&oldest)
        {
            out.push(v);
        }
        map.insert(instance, p);
        out
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Millis, TxnPolicy)>> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A completed transaction, kept for the milter; older ones stay counted and are dropped.
    fn end(&self, queue_id: &str, policy: TxnPolicy, now: Millis) {
        let mut ended = self.ended();
        ended.retain(|_, (at, _)| now - *at < ENDED_FOR_MS);
        if ended.len() < MAX_PENDING {
            ended.insert(queue_id.to_string(), (now, policy));
        }
    }

    /// What the transaction of Postfix queue id `queue_id` reserved, for the milter: given
    /// back when it rejects the message, kept (dropped here) when it accepts it.
    pub fn take_ended(&self, queue_id: &str) -> Option<TxnPolicy> {
        self.ended().remove(queue_id).map(|(_, p)| p)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One Postfix connection: requests in, `action=` lines out, until Postfix closes it.
pub async fn run(
    relay: Arc<Relay>,
    txns: Arc<PendingTxns>,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let mut parser = PolicyParser::new();
    let mut buf = vec![0u8; 8192];
    let mut last_instance: Option<String> = None;
    let idle = relay.cfg.listeners.session_timeout;
    loop {
        let action = match parser.next_request() {
            Parsed::NeedMore => {
                let n = tokio::select! {
                    r = tokio::time::timeout(idle, tcp.read(&mut buf)) => match r {
                        Ok(Ok(n)) => n,
                        Ok(Err(e)) => return Err(e),
                        Err(_) => 0,
                    },
                    _ = relay.shutdown.stopped() => 0,
                };
                if n == 0 {
                    return Ok(());
                }
                parser.feed(&buf[..n]);
                continue;
            }
            Parsed::Request(req) => answer(&relay, &txns, &mut last_instance, peer, &req).await,
            Parsed::Malformed(m) => {
                tracing::warn!(%peer, problem = %m, "malformed policy request");
                PolicyAction::reply(&malformed(&m.to_string()))
            }
            Parsed::Fatal(m) => {
                tracing::warn!(%peer, problem = %m, "policy request beyond bounds: closing");
                tcp.write_all(&PolicyAction::reply(&malformed(&m.to_string())).to_bytes())
                    .await?;
                let _ = tcp.shutdown().await;
                return Ok(());
            }
        };
        tcp.write_all(&action.to_bytes()).await?;
    }
}

/// A request Outguard cannot read: deferred (Postfix retries), with what was wrong.
fn malformed(why: &str) -> Reply {
    Reply::new(
        451,
        "4.3.0",
        format!("Outguard policy service: malformed request ({why})"),
    )
}

fn action(r: Result<(), Reply>) -> PolicyAction {
    match r {
        Ok(()) => PolicyAction::Dunno,
        Err(reply) => PolicyAction::reply(&reply),
    }
}

async fn answer(
    relay: &Relay,
    txns: &PendingTxns,
    last_instance: &mut Option<String>,
    peer: SocketAddr,
    req: &PolicyRequest,
) -> PolicyAction {
    if let Some(r) = req.get("request")
        && r != "smtpd_access_policy"
    {
        return PolicyAction::reply(&malformed(&format!("unknown request type {r:?}")));
    }
    let Some(state) = req.get("protocol_state") else {
        return PolicyAction::reply(&malformed("no protocol_state attribute"));
    };
    // Without `instance` (not Postfix) the connection is the transaction.
    let instance = req
        .get("instance")
        .map(str::to_string)
        .unwrap_or_else(|| format!("conn:{peer}"));
    if last_instance.as_deref().is_some_and(|l| l != instance) {
        // A Postfix smtpd process asks about one transaction at a time: the last one ended
        // without END-OF-MESSAGE (RSET, QUIT, a refused DATA), so its recipients go back.
        if let Some(mut old) = last_instance.take().and_then(|l| txns.take(&l)) {
            relay.policy_release(&mut old.policy).await;
        }
    }
    *last_instance = Some(instance.clone());
    match state.to_ascii_uppercase().as_str() {
        "MAIL" => match open(relay, txns, &instance, req).await {
            Ok(Some(p)) => {
                keep(relay, txns, &instance, p).await;
                PolicyAction::Dunno
            }
            Ok(None) => PolicyAction::Dunno,
            Err(r) => PolicyAction::reply(&r),
        },
        "RCPT" => action(rcpt_stage(relay, txns, &instance, req).await),
        "END-OF-MESSAGE" => {
            // Complete: the reservations stay counted, unless the milter rejects the message.
            if let Some(p) = txns.take(&instance) {
                tracing::debug!(%instance, "postfix transaction complete");
                if let Some(q) = req.get("queue_id") {
                    txns.end(q, p.policy, relay.clock.now_ms());
                }
            }
            *last_instance = None;
            PolicyAction::Dunno
        }
        _ => PolicyAction::Dunno,
    }
}

/// The transaction's state after its MAIL stage, taken out of `txns` (the caller keeps it
/// again), or the refusal. `Ok(None)`: unknown sender under `unknown = "dunno"`.
async fn open(
    relay: &Relay,
    txns: &PendingTxns,
    instance: &str,
    req: &PolicyRequest,
) -> Result<Option<Pending>, Reply> {
    if let Some(p) = txns.take(instance) {
        return Ok(Some(p));
    }
    let client = req
        .get("client_address")
        .and_then(|a| a.parse::<IpAddr>().ok());
    let identity = match super::identify(relay, req.get("sasl_username"), client).await? {
        Some(id) => id,
        None => {
            tracing::info!(
                sasl_username = req.get("sasl_username").unwrap_or(""),
                client = req.get("client_address").unwrap_or(""),
                "postfix transaction from a sender unknown to Outguard"
            );
            return match super::unknown_sender(relay) {
                Some(r) => Err(r),
                None => Ok(None),
            };
        }
    };
    let from = req.get("sender").unwrap_or("");
    let kind: SenderKind = relay.check_sender(&identity, from).await?;
    let mut policy = TxnPolicy::default();
    if let Err(r) = relay.policy_at_mail(&identity, &mut policy).await {
        relay.policy_release(&mut policy).await;
        return Err(r);
    }
    if let Err(r) = relay
        .policy_unregistered(&identity, &kind, &mut policy)
        .await
    {
        relay.policy_release(&mut policy).await;
        return Err(r);
    }
    Ok(Some(Pending {
        identity,
        policy,
        admitted: Default::default(),
        seen: relay.clock.now_ms(),
    }))
}

async fn keep(relay: &Relay, txns: &PendingTxns, instance: &str, mut p: Pending) {
    p.seen = relay.clock.now_ms();
    let idle = i64::try_from(relay.cfg.listeners.session_timeout.as_millis()).unwrap_or(i64::MAX);
    for mut old in txns.put(instance.to_string(), p, idle) {
        relay.policy_release(&mut old.policy).await;
    }
}

async fn rcpt_stage(
    relay: &Relay,
    txns: &PendingTxns,
    instance: &str,
    req: &PolicyRequest,
) -> Result<(), Reply> {
    let Some(mut p) = open(relay, txns, instance, req).await? else {
        return Ok(());
    };
    let Some(to) = req.get("recipient") else {
        keep(relay, txns, instance, p).await;
        return Err(malformed("no recipient attribute at RCPT"));
    };
    let key = to.to_ascii_lowercase();
    if p.admitted.contains(&key) {
        keep(relay, txns, instance, p).await;
        return Ok(());
    }
    let from = req.get("sender").unwrap_or("");
    let r = relay
        .policy_at_rcpt(&p.identity, from, to, &mut p.policy)
        .await;
    if r.is_ok() {
        p.admitted.insert(key);
    }
    if let Err(e) = &r {
        relay.metrics.refusal("rcpt", e.code, &e.enhanced);
        tracing::info!(%instance, rcpt = to, reply = %e, "postfix recipient refused");
    }
    keep(relay, txns, instance, p).await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(seen: Millis) -> Pending {
        Pending {
            identity: Identity::None,
            policy: TxnPolicy::default(),
            admitted: Default::default(),
            seen,
        }
    }

    #[test]
    fn idle_transactions_are_handed_back_when_another_is_stored() {
        let t = PendingTxns::default();
        assert!(t.put("a".into(), pending(0), 1000).is_empty());
        assert!(t.put("b".into(), pending(500), 1000).is_empty());
        let back = t.put("c".into(), pending(1001), 1000);
        assert_eq!(back.len(), 1, "a was idle past the limit");
        assert_eq!(t.len(), 2);
        assert!(t.take("a").is_none() && t.take("b").is_some());
    }
}
