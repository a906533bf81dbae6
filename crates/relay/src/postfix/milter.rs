//! The milter (`smtpd_milters = inet:HOST:PORT`): one I/O loop per Postfix connection over the
//! sans-IO codec of `outguard_proto::milter`. The whole message is assembled from its header
//! and body packets and goes through `pipeline::assess` — the header checks, the scan, the
//! sender signals and the policy of our own listeners, so its verdict counts toward the
//! account's spam limits, restrictions and notifications exactly as there.
//!
//! At end of message:
//! - reject (spam above the reject score, a restriction this message caused with action
//!   reject, …): `y` with our reply, the reasons in its text;
//! - quarantine or hold: `q` (Postfix puts it on its hold queue) with the reason;
//! - otherwise `X-Outguard-Verdict`, `X-Outguard-Id` and `X-Outguard-Pool` are added and Postfix
//!   delivers it (its `header_checks` may route on the pool, see README "With Postfix").
//!
//! The sender is `{auth_authen}` from Postfix's macros (an account), else the connector of the
//! client address; unknown senders get `[policy_service] unknown`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use outguard_proto::milter::{Command, MilterParser, Response, SMFIF_ADDHDRS, SMFIF_QUARANTINE};
use outguard_proto::{ListenerKind, Reply};
use outguard_store::trace::TraceRecord;
use outguard_types::model::{EventKind, MessageState};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::policy::PendingTxns;
use crate::pipeline::{Assessed, Disposition, Submission};
use crate::server::Relay;
use crate::smtp::checks::SenderKind;
use crate::smtp::identity::Identity;

/// One message between MAIL and end of body.
#[derive(Debug, Default)]
struct Message {
    identity: Option<Identity>,
    sender: Option<SenderKind>,
    mail_from: String,
    rcpts: Vec<String>,
    body: Vec<u8>,
    too_big: bool,
}

struct MilterConn {
    relay: Arc<Relay>,
    txns: Arc<PendingTxns>,
    macros: HashMap<String, String>,
    client: Option<IpAddr>,
    helo: String,
    msg: Option<Message>,
}

/// One Postfix connection, until it says QUIT or closes.
pub async fn run(
    relay: Arc<Relay>,
    txns: Arc<PendingTxns>,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let mut parser = MilterParser::new();
    let mut buf = vec![0u8; 64 * 1024];
    let idle = relay.cfg.listeners.session_timeout;
    let mut conn = MilterConn {
        relay,
        txns,
        macros: HashMap::new(),
        client: None,
        helo: String::new(),
        msg: None,
    };
    loop {
        match parser.next_command() {
            Ok(Some(Command::Quit)) => return Ok(()),
            Ok(Some(cmd)) => {
                let out = conn.answer(cmd).await;
                let mut bytes = Vec::new();
                for r in &out {
                    bytes.extend(r.to_bytes());
                }
                if !bytes.is_empty() {
                    tcp.write_all(&bytes).await?;
                }
            }
            Ok(None) => {
                let n = tokio::select! {
                    r = tokio::time::timeout(idle, tcp.read(&mut buf)) => match r {
                        Ok(Ok(n)) => n,
                        Ok(Err(e)) => return Err(e),
                        Err(_) => 0,
                    },
                    _ = conn.relay.shutdown.stopped() => 0,
                };
                if n == 0 {
                    return Ok(());
                }
                parser.feed(&buf[..n]);
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed milter packet: closing");
                let _ = tcp.shutdown().await;
                return Ok(());
            }
        }
    }
}

fn unbracket(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
        .to_string()
}

impl MilterConn {
    /// The responses to one command (none for macros and abort).
    async fn answer(&mut self, cmd: Command) -> Vec<Response> {
        match cmd {
            Command::OptNeg {
                version, actions, ..
            } => vec![Response::OptNeg {
                version: version.min(outguard_proto::milter::VERSION),
                actions: actions & (SMFIF_ADDHDRS | SMFIF_QUARANTINE),
                // Every step, each answered: nothing skipped.
                protocol: 0,
            }],
            Command::Macro { pairs, .. } => {
                self.macros.extend(pairs);
                vec![]
            }
            Command::Connect { address, .. } => {
                self.client = address.parse().ok();
                vec![Response::Continue]
            }
            Command::Helo(h) => {
                self.helo = h;
                vec![Response::Continue]
            }
            Command::Mail(args) => vec![self.mail(args.first().map(|a| unbracket(a))).await],
            Command::Rcpt(args) => {
                if let (Some(m), Some(to)) = (self.msg.as_mut(), args.first()) {
                    m.rcpts.push(unbracket(to));
                }
                vec![Response::Continue]
            }
            Command::Header { name, value } => {
                let max = self.max_size();
                if let Some(m) = self.msg.as_mut() {
                    m.body.extend_from_slice(name.as_bytes());
                    m.body.extend_from_slice(b": ");
                    m.body.extend_from_slice(&value);
                    m.body.extend_from_slice(b"\r\n");
                    m.too_big |= m.body.len() > max;
                }
                vec![Response::Continue]
            }
            Command::EndOfHeaders => {
                if let Some(m) = self.msg.as_mut() {
                    m.body.extend_from_slice(b"\r\n");
                }
                vec![Response::Continue]
            }
            Command::Body(chunk) => {
                let max = self.max_size();
                if let Some(m) = self.msg.as_mut()
                    && !m.too_big
                {
                    m.body.extend_from_slice(&chunk);
                    m.too_big = m.body.len() > max;
                    if m.too_big {
                        m.body = Vec::new();
                    }
                }
                vec![Response::Continue]
            }
            Command::EndOfBody => self.end_of_message().await,
            Command::Abort => {
                self.msg = None;
                vec![]
            }
            Command::QuitNewConnection => {
                self.macros.clear();
                self.client = None;
                self.helo.clear();
                self.msg = None;
                vec![]
            }
            Command::Quit => vec![],
            Command::Data | Command::Unknown(_) | Command::Other(_) => vec![Response::Continue],
        }
    }

    fn max_size(&self) -> usize {
        usize::try_from(self.relay.cfg.limits.max_message_size).unwrap_or(usize::MAX)
    }

    async fn mail(&mut self, from: Option<String>) -> Response {
        let from = from.unwrap_or_default();
        let user = self.macros.get("{auth_authen}").cloned();
        let identity = match super::identify(
            &self.relay,
            user.as_deref().filter(|u| !u.is_empty()),
            self.client,
        )
        .await
        {
            Ok(id) => id,
            Err(r) => return Response::reply(&r),
        };
        let Some(identity) = identity else {
            self.msg = None;
            return match super::unknown_sender(&self.relay) {
                Some(r) => Response::reply(&r),
                // Not ours to judge: no further callbacks for this message.
                None => Response::Accept,
            };
        };
        let sender = match self.relay.check_sender(&identity, &from).await {
            Ok(k) => k,
            Err(r) => return Response::reply(&r),
        };
        self.msg = Some(Message {
            identity: Some(identity),
            sender: Some(sender),
            mail_from: from,
            ..Message::default()
        });
        Response::Continue
    }

    async fn end_of_message(&mut self) -> Vec<Response> {
        let Some(m) = self.msg.take() else {
            return vec![Response::Continue];
        };
        let (Some(identity), Some(sender)) = (m.identity, m.sender) else {
            return vec![Response::Continue];
        };
        if m.too_big {
            return vec![Response::reply(&Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed limit",
            ))];
        }
        let queue_id = self.macros.get("i").cloned().unwrap_or_default();
        let client = self.client.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let sub = Submission {
            identity: &identity,
            peer: client,
            helo: &self.helo,
            listener: ListenerKind::Milter,
            tls: false,
            mail_from: &m.mail_from,
            sender,
            rcpts: &m.rcpts,
            policy_measures: &[],
        };
        // The policy service's reservations for this message (Postfix asked it first).
        let mut reserved = self.txns.take_ended(&queue_id);
        let relay = &*self.relay;
        let a = match crate::pipeline::assess(relay, &sub, m.body).await {
            Ok(a) => a,
            Err(r) => {
                if let Some(p) = reserved.as_mut() {
                    relay.policy_release(p).await;
                }
                return vec![Response::reply(&r)];
            }
        };
        match &a.disposition {
            Disposition::Reject(reply) => {
                relay.metrics.message("rejected", "-");
                // Refused: its recipients are given back, as on our own listeners.
                if let Some(p) = reserved.as_mut() {
                    relay.policy_release(p).await;
                }
                let reply = reply.clone();
                crate::pipeline::reject(
                    relay,
                    a.record,
                    &a.verdict,
                    &reply,
                    &a.policy_name,
                    &a.measures,
                )
                .await;
                vec![Response::reply(&reply)]
            }
            Disposition::Quarantine { pool, .. } => {
                let why = format!("Outguard: quarantined ({})", a.verdict.class.as_str());
                let pool = pool.clone();
                handed_back(relay, &sub, a, &pool, &queue_id, MessageState::Quarantined).await;
                vec![Response::Quarantine(why), Response::Continue]
            }
            Disposition::Deliver {
                pool,
                extra_headers,
                ..
            } => {
                let pool = pool.clone();
                let mut out: Vec<Response> = Vec::new();
                let verdict = extra_headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("X-Outguard-Verdict"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| outguard_policy::disposition::verdict_header(&a.verdict));
                out.push(add("X-Outguard-Verdict", verdict));
                out.push(add("X-Outguard-Id", a.id.clone()));
                out.push(add("X-Outguard-Pool", pool.clone()));
                for (n, v) in extra_headers
                    .iter()
                    .filter(|(n, _)| !n.eq_ignore_ascii_case("X-Outguard-Verdict"))
                {
                    out.push(add(n, v.clone()));
                }
                let (state, last) = if a.hold {
                    (
                        MessageState::Held,
                        vec![
                            Response::Quarantine(
                                "Outguard: held, the sender was restricted by this message".into(),
                            ),
                            Response::Continue,
                        ],
                    )
                } else {
                    (MessageState::Queued, vec![Response::Continue])
                };
                crate::fbl::rates::count_sent(
                    relay,
                    &identity,
                    m.rcpts.len(),
                    relay.clock.now_ms(),
                )
                .await;
                handed_back(relay, &sub, a, &pool, &queue_id, state).await;
                out.extend(last);
                out
            }
        }
    }
}

fn add(name: &str, value: String) -> Response {
    Response::AddHeader {
        name: name.to_string(),
        value,
    }
}

/// The trace of a message Postfix delivers (or holds) after our decision.
async fn handed_back(
    relay: &Relay,
    sub: &Submission<'_>,
    a: Assessed,
    pool: &str,
    queue_id: &str,
    state: MessageState,
) {
    let Assessed {
        id,
        verdict,
        mut record,
        policy_name,
        measures,
        body,
        ..
    } = a;
    record.pool = Some(pool.to_string());
    record.state = state;
    let metric = match state {
        MessageState::Held => "held",
        MessageState::Quarantined => "quarantined",
        _ => "queued",
    };
    relay.metrics.message(metric, pool);
    relay
        .tracer
        .record(TraceRecord::Message(Box::new(record)))
        .await;
    let who = match sub.identity {
        Identity::Account { address, .. } => format!("account {address}"),
        Identity::Connector { cidr, .. } => format!("connector {cidr}"),
        _ => "system".into(),
    };
    let received = format!(
        "received by Postfix (queue id {queue_id}) from {} [{}] and passed to the milter ({who}), {} recipient(s), {} bytes",
        sub.helo,
        sub.peer,
        sub.rcpts.len(),
        body.len()
    );
    relay
        .tracer
        .event(
            &id,
            EventKind::Received,
            received,
            json!({"peer": sub.peer.to_string(), "helo": sub.helo, "listener": "milter", "postfix_queue_id": queue_id, "mail_from": sub.mail_from, "rcpts": sub.rcpts}),
        )
        .await;
    crate::pipeline::trace_verdict(relay, &id, &verdict).await;
    relay
        .tracer
        .event(
            &id,
            EventKind::Policy,
            format!("policy {policy_name}: {}", measures.join("; ")),
            json!({"policy": policy_name, "measures": measures}),
        )
        .await;
    let (kind, what) = match state {
        MessageState::Held => (
            EventKind::Held,
            "held in Postfix's hold queue (the submitter was restricted by this message)",
        ),
        MessageState::Quarantined => (
            EventKind::Quarantined,
            "quarantined in Postfix's hold queue",
        ),
        _ => (EventKind::Queued, "handed back to Postfix to deliver"),
    };
    relay
        .tracer
        .event(
            &id,
            kind,
            format!("{what}, for the {pool} pool (X-Outguard-Pool)"),
            json!({"pool": pool, "postfix_queue_id": queue_id}),
        )
        .await;
}
