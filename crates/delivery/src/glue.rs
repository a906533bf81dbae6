//! Wiring of the queue into the server: builds resolver, pools, DKIM signers and TLS from the
//! configuration, starts the queue, and forwards its events (trace, state changes, DSNs it
//! created) to the trace writer in order, so the records store mirrors the spool.

use std::sync::Arc;

use anyhow::Context as _;
use outguard_store::Store;
use outguard_store::spool::Spool;
use outguard_types::config::Config;
use outguard_types::model::{MessageRecord, MessageState};
use tokio::sync::mpsc;

use super::dkim::DkimSigners;
use super::mx::MxResolver;
use super::pools::PoolSet;
use super::queue::{Queue, QueueConfig, QueueDeps, QueueEvent, QueueHandle};
use super::tls::{opportunistic_client_config, verifier, verifying_client_config};
use crate::shutdown::Shutdown;
use outguard_store::trace::{TraceRecord, Tracer};

/// Start the delivery queue for `serve`.
pub async fn start(
    cfg: &Config,
    spool: Spool,
    _store: Store,
    tracer: Tracer,
    shutdown: Shutdown,
    clock: outguard_types::time::Clock,
) -> anyhow::Result<QueueHandle> {
    let resolver = MxResolver::new(&cfg.dns).context("building the DNS resolver")?;
    let pools = Arc::new(PoolSet::new(&cfg.pools, &cfg.server.hostname));
    let dkim = Arc::new(DkimSigners::load(&cfg.dkim)?);
    let tls = Some(opportunistic_client_config().context("building the outbound TLS config")?);
    // Without trust roots only `verify` mail is affected: it is deferred, saying why.
    let verified_tls = match verifying_client_config(cfg.delivery.tls_ca_file.as_deref()) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "TLS policy `verify` cannot be met: mail under it is deferred");
            None
        }
    };
    // MTA-STS fetches its policies and judges certificates with the same trust roots; without
    // them no policy can be fetched, and mail goes as if none was published.
    let tls_verifier = verifier(cfg.delivery.tls_ca_file.as_deref()).ok();
    let (tx, rx) = mpsc::channel(10_000);
    tokio::spawn(forward(
        rx,
        tracer,
        cfg.node_name(),
        cfg.server.hostname.clone(),
    ));
    let deps = QueueDeps {
        spool,
        config: QueueConfig {
            hostname: cfg.server.hostname.clone(),
            delivery: cfg.delivery.clone(),
            routes: cfg.routes.clone(),
            shaping: cfg.shaping.clone(),
            srs: cfg.srs.as_ref().map(|c| {
                outguard_proto::srs::Srs::new(c.secret.as_bytes(), &c.domain, c.max_age_days())
            }),
        },
        resolver,
        pools,
        dkim,
        events: tx,
        tls,
        verified_tls,
        tls_verifier,
        clock,
    };
    let handle = Queue::start(deps, async move { shutdown.stopped().await }).await?;
    Ok(handle)
}

async fn forward(
    mut rx: mpsc::Receiver<QueueEvent>,
    tracer: Tracer,
    node: String,
    hostname: String,
) {
    while let Some(ev) = rx.recv().await {
        let record = match ev {
            QueueEvent::Trace(e) => TraceRecord::Event(e),
            QueueEvent::State { id, state, pool } => TraceRecord::State { id, state, pool },
            QueueEvent::Created {
                envelope,
                size,
                about,
            } => {
                tracing::debug!(dsn = %envelope.id, %about, "DSN spooled");
                TraceRecord::Message(Box::new(MessageRecord {
                    id: envelope.id,
                    tenant: envelope.tenant,
                    submitter: envelope.submitter,
                    mail_from: envelope.mail_from,
                    rcpts: envelope.rcpts,
                    header_from: Some(format!("MAILER-DAEMON@{hostname}")),
                    message_id_header: None,
                    subject: Some("Undelivered Mail Returned to Sender".into()),
                    size,
                    received_at: envelope.received_at,
                    state: MessageState::Queued,
                    pool: Some(envelope.pool),
                    class: envelope.class,
                    score: envelope.score,
                    node: node.clone(),
                    body_digest: None,
                }))
            }
        };
        tracer.record(record).await;
    }
}
