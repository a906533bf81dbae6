//! One SMTP session's I/O loop: reads with timeouts and budgets, drives the sans-IO
//! [`Session`], answers its decision events through the relay's checks and the message
//! pipeline, and gives back what an abandoned transaction reserved.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use outguard_proto::session::MailRequest;
use outguard_proto::{Event, ListenerKind, Reply, Session, SessionConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

use super::checks::SenderKind;
use super::identity::Identity;
use super::refusal_log::{self, Refused, Stage};
use super::stream::ClientStream;
use crate::enforce::TxnPolicy;
use crate::pipeline::Submission;
use crate::server::Relay;

/// Per-transaction state the session does not keep.
#[derive(Debug, Default)]
struct Txn {
    sender: Option<SenderKind>,
    policy: TxnPolicy,
}

pub struct Conn {
    relay: Arc<Relay>,
    peer: SocketAddr,
    kind: ListenerKind,
    identity: Identity,
    session: Session,
    txn: Txn,
    out: Vec<u8>,
    /// What the login behaviour found at this session's AUTH (issue 25), for the trace of its
    /// messages.
    login_note: Option<String>,
}

impl Conn {
    pub fn new(
        relay: Arc<Relay>,
        peer: SocketAddr,
        kind: ListenerKind,
        tls_active: bool,
        identity: Identity,
    ) -> Conn {
        let cfg = &relay.cfg;
        let loopback = peer.ip().is_loopback();
        let session = Session::new(SessionConfig {
            hostname: cfg.server.hostname.clone(),
            kind,
            tls_available: relay.tls.is_available() && !matches!(kind, ListenerKind::Fbl),
            tls_active,
            plaintext_auth_ok: loopback && cfg.listeners.allow_plaintext_auth_on_loopback,
            // A report is not mail to relay: its own cap (SPEC §9, `552 5.3.4` past it).
            max_message_size: usize::try_from(if kind == ListenerKind::Fbl {
                cfg.fbl.max_report_size
            } else {
                cfg.limits.max_message_size
            })
            .unwrap_or(usize::MAX),
            max_recipients: cfg.limits.max_recipients_per_message as usize,
        });
        Conn {
            relay,
            peer,
            kind,
            identity,
            session,
            txn: Txn::default(),
            out: Vec::new(),
            login_note: None,
        }
    }

    /// A transaction finished while the server drains. The client's QUIT is usually already on
    /// its way: answer it `221` as usual; anything else (or silence) gets `421 4.3.2`.
    async fn last_command_while_draining(
        &mut self,
        stream: &mut ClientStream,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        let read = tokio::time::timeout(Duration::from_millis(500), stream.read(buf)).await;
        if let Ok(Ok(n)) = read
            && n > 0
        {
            self.session.feed(&buf[..n]);
            if let Event::Close(r) = self.session.next_event()
                && r.code == 221
            {
                return self.close(stream, r).await;
            }
        }
        self.close(stream, Reply::shutting_down()).await
    }

    /// Run the session to its end. Errors are connection-level (I/O) and only logged.
    pub async fn run(mut self, mut stream: ClientStream) -> std::io::Result<()> {
        let lcfg = self.relay.cfg.listeners.clone();
        let deadline = Instant::now() + lcfg.session_timeout;
        let greeting = self.session.greeting();
        stream.write_all(&greeting.to_bytes()).await?;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.session.next_event() {
                Event::NeedMore => {
                    self.flush(&mut stream).await?;
                    // Between transactions a draining server says goodbye; inside one it lets it finish.
                    let idle = !self.session.in_data() && self.session.mail_from().is_none();
                    if idle && self.relay.shutdown.is_draining() {
                        return self
                            .last_command_while_draining(&mut stream, &mut buf)
                            .await;
                    }
                    let wait = lcfg
                        .command_timeout
                        .min(deadline.saturating_duration_since(Instant::now()));
                    let n = match read_or_drain(
                        &mut stream,
                        &mut buf,
                        wait,
                        idle.then_some(&*self.relay),
                    )
                    .await
                    {
                        ReadOutcome::Data(n) => n,
                        ReadOutcome::Eof => break,
                        ReadOutcome::Timeout => {
                            return self.close(&mut stream, Reply::timeout()).await;
                        }
                        ReadOutcome::Draining => {
                            return self.close(&mut stream, Reply::shutting_down()).await;
                        }
                    };
                    self.session.feed(&buf[..n]);
                }
                Event::Reply(r) => self.out.extend_from_slice(&r.to_bytes()),
                Event::Close(r) => return self.close(&mut stream, r).await,
                Event::StartTls(r) => {
                    self.out.extend_from_slice(&r.to_bytes());
                    self.flush(&mut stream).await?;
                    let Some(acceptor) = self.relay.tls.current() else {
                        break;
                    };
                    let plain = std::mem::replace(&mut stream, ClientStream::Upgrading);
                    stream = match tokio::time::timeout(
                        Duration::from_secs(30),
                        plain.upgrade(&acceptor),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        _ => break,
                    };
                    self.relay.metrics.tls_session(self.kind.as_str());
                    self.session.tls_started();
                }
                Event::Auth(creds) => {
                    let result = self.relay.check_auth(self.peer.ip(), &creds).await;
                    if result.is_err() {
                        self.relay.metrics.auth_failure();
                    }
                    if let Ok(id) = &result {
                        self.login_note = self.relay.login_behaviour(id, self.peer.ip()).await;
                    }
                    let result = result.map(|id| {
                        self.identity = id;
                        creds.username.clone()
                    });
                    self.session.auth_done(result);
                }
                Event::Mail(m) => {
                    let r = self.on_mail(&m).await;
                    if let Err(e) = &r {
                        self.relay.metrics.refusal("mail", e.code, &e.enhanced);
                        self.log_refusal(Stage::Mail, &m.from, None, e);
                    }
                    self.session.mail_done(r);
                }
                Event::Rcpt(to) => {
                    let r = self.on_rcpt(&to).await;
                    if let Err(e) = &r {
                        self.relay.metrics.refusal("rcpt", e.code, &e.enhanced);
                        let from = self.session.mail_from().map(|m| m.from.clone());
                        self.log_refusal(Stage::Rcpt, from.as_deref().unwrap_or(""), Some(&to), e);
                    }
                    self.session.rcpt_done(r);
                }
                Event::Message(body) => {
                    let reply = self.on_message(body).await;
                    if !reply.is_positive() {
                        self.relay
                            .metrics
                            .refusal("data", reply.code, &reply.enhanced);
                    }
                    if reply.is_positive() {
                        // Accepted: what the transaction reserved stays counted.
                        self.txn = Txn::default();
                    }
                    self.session.data_done(reply);
                }
                Event::TransactionReset => {
                    self.relay.policy_release(&mut self.txn.policy).await;
                    self.txn = Txn::default();
                }
            }
        }
        self.flush(&mut stream).await
    }

    async fn flush(&mut self, stream: &mut ClientStream) -> std::io::Result<()> {
        if !self.out.is_empty() {
            stream.write_all(&self.out).await?;
            self.out.clear();
        }
        stream.flush().await
    }

    async fn close(&mut self, stream: &mut ClientStream, r: Reply) -> std::io::Result<()> {
        self.session.abort();
        self.out.extend_from_slice(&r.to_bytes());
        self.flush(stream).await?;
        let _ = stream.shutdown().await;
        Ok(())
    }

    async fn on_mail(&mut self, m: &MailRequest) -> Result<(), Reply> {
        if self.kind == ListenerKind::Fbl {
            // Reports are capped in rate per source IP (SPEC §9), before any body is read.
            crate::fbl::trust::admit(&self.relay, self.peer.ip(), self.relay.clock.now_ms())
                .await?;
        }
        let kind = self.relay.check_sender(&self.identity, &m.from).await?;
        if let Err(r) = self
            .relay
            .policy_at_mail(&self.identity, &mut self.txn.policy)
            .await
        {
            self.relay.policy_release(&mut self.txn.policy).await;
            return Err(r);
        }
        if let Err(r) = self
            .relay
            .policy_unregistered(&self.identity, &kind, &mut self.txn.policy)
            .await
        {
            self.relay.policy_release(&mut self.txn.policy).await;
            return Err(r);
        }
        self.txn.sender = Some(kind);
        if let Some(note) = &self.login_note {
            self.txn.policy.measures.push(note.clone());
        }
        Ok(())
    }

    /// One `refused` line in the mail log (the client got `reply`).
    fn log_refusal(&self, stage: Stage, from: &str, rcpt: Option<&str>, reply: &Reply) {
        refusal_log::log(
            &Refused {
                stage,
                identity: &self.identity,
                client: self.peer.ip(),
                listener: self.kind.as_str(),
                from,
                rcpt,
            },
            reply,
        );
    }

    async fn on_rcpt(&mut self, to: &str) -> Result<(), Reply> {
        if self.kind == ListenerKind::Fbl {
            return self.relay.check_fbl_rcpt(to);
        }
        let from = self
            .session
            .mail_from()
            .map(|m| m.from.clone())
            .unwrap_or_default();
        self.relay
            .policy_at_rcpt(&self.identity, &from, to, &mut self.txn.policy)
            .await
    }

    async fn on_message(&mut self, body: Vec<u8>) -> Reply {
        if self.kind == ListenerKind::Fbl {
            // Bounces to our SRS addresses go back to their original senders; the rest is a report.
            let (srs, reports): (Vec<&String>, Vec<&String>) = self
                .session
                .rcpts()
                .iter()
                .partition(|r| self.relay.is_srs_rcpt(r));
            if srs.is_empty() {
                return crate::pipeline::receive_feedback_report(
                    &self.relay,
                    &body,
                    self.peer.ip(),
                )
                .await;
            }
            let helo = self.session.helo_name();
            let reply =
                crate::srs::forward_bounce(&self.relay, self.peer.ip(), helo, &srs, &body).await;
            if reports.is_empty() || !reply.is_positive() {
                return reply;
            }
            return crate::pipeline::receive_feedback_report(&self.relay, &body, self.peer.ip())
                .await;
        }
        let (Some(mail), Some(sender)) =
            (self.session.mail_from().cloned(), self.txn.sender.clone())
        else {
            return Reply::local_error();
        };
        let sub = Submission {
            identity: &self.identity,
            peer: self.peer.ip(),
            helo: self.session.helo_name(),
            listener: self.kind,
            tls: self.session.tls_active(),
            mail_from: &mail.from,
            sender,
            rcpts: self.session.rcpts(),
            policy_measures: &self.txn.policy.measures,
        };
        crate::pipeline::accept(&self.relay, sub, body).await
    }
}

enum ReadOutcome {
    Data(usize),
    Eof,
    Timeout,
    Draining,
}

async fn read_or_drain(
    stream: &mut ClientStream,
    buf: &mut [u8],
    wait: Duration,
    relay: Option<&Relay>,
) -> ReadOutcome {
    let drain = async {
        match relay {
            Some(r) => r.shutdown.draining().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = tokio::time::timeout(wait, stream.read(buf)) => match r {
            Ok(Ok(0)) | Ok(Err(_)) => ReadOutcome::Eof,
            Ok(Ok(n)) => ReadOutcome::Data(n),
            Err(_) => ReadOutcome::Timeout,
        },
        _ = drain => ReadOutcome::Draining,
    }
}
