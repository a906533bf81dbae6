//! The relay's shared parts: [`Relay::build`] assembles them once from the configuration (spool,
//! queue, scanner, TLS, counters, trace writer, enforcement, webhooks) for `serve` and for
//! in-process tests alike. Binding listeners and running until a signal is `serve`'s job.

pub mod accept;
pub mod auth_dns;
pub mod conn_limit;
pub mod fd_limit;
pub mod reload;
mod seams;
pub mod sender_dns;
pub mod tasks;

use std::sync::Arc;

use anyhow::Context as _;
use outguard_store::Store;
use outguard_store::spool::Spool;
use outguard_types::config::Config;

pub use outguard_delivery::shutdown::{self, Shutdown};

use crate::smtp::auth_limit::{AuthLimiter, AuthLimits};
use outguard_delivery::queue::QueueHandle;
use outguard_store::trace::Tracer;
use outguard_types::time::now_ms;

/// Everything a session, the pipeline and delivery share. One per process, behind an `Arc`.
pub struct Relay {
    pub cfg: Config,
    pub node: String,
    pub store: Store,
    pub spool: Spool,
    pub tracer: Tracer,
    pub queue: QueueHandle,
    pub scanner: Arc<outguard_spam::Engine>,
    pub tls: crate::tls::ServerTls,
    pub auth_limiter: AuthLimiter,
    pub sender_dns: sender_dns::SenderDns,
    /// DMARC / SPF records and DKIM verification for the bulk compliance gate (issue 25).
    pub auth_dns: auth_dns::AuthDns,
    pub enforcer: crate::enforce::Enforcer,
    pub alert_cap: std::sync::Mutex<outguard_policy::AlertCap>,
    pub webhooks: crate::webhooks::Webhooks,
    /// Runs the side effects of enforcement after the command that caused them is answered.
    pub outbox: crate::outbox::Outbox,
    /// The one clock: wall-clock ms advancing with `tokio::time`.
    pub clock: outguard_types::time::Clock,
    pub shutdown: Shutdown,
    /// Counters for `/metrics` (messages by disposition and pool, scan latency).
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("OUTGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

fn load_scanner(cfg: &Config) -> anyhow::Result<outguard_spam::Engine> {
    let engine = match &cfg.spam.model {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("reading spam model {}", p.display()))?;
            outguard_spam::Engine::from_model_bytes(&bytes)
                .with_context(|| format!("loading spam model {}", p.display()))?
        }
        None => outguard_spam::Engine::builtin(),
    };
    let (s, p) = engine.thresholds();
    let (s, p) = (
        cfg.spam.suspicious_score.unwrap_or(s),
        cfg.spam.spam_score.unwrap_or(p),
    );
    Ok(engine.with_thresholds(s, p))
}

/// The counter store. `memory` (default): in-process windows persisted under data_dir (saved
/// every few seconds and at shutdown, loaded at start so a restart keeps the windows).
/// `redis://…[?prefix=NAME]` or `redis+cluster://h1:p1,h2:p2,…[?prefix=NAME]` (cluster mode):
/// shared windows on Redis (or a Redis Cluster, keys hash-tagged by subject), time from Redis; it must
/// answer at start, and later outages defer submissions (`451 4.3.0`) until it is back.
async fn start_counters(
    cfg: &Config,
    shutdown: &Shutdown,
) -> anyhow::Result<(
    Arc<dyn outguard_policy::Counters>,
    Arc<dyn outguard_policy::SignalStore>,
    tokio::task::JoinHandle<()>,
)> {
    match cfg.counters.as_deref() {
        None | Some("memory") => {}
        Some(url) if url.starts_with("redis://") || url.starts_with("redis+cluster://") => {
            let (redis_url, prefix) = outguard_store::redis_counters::split_prefix(url);
            // Unreachable at start: exit 69 (service unavailable), like an unreachable store.
            let redis = outguard_store::redis_counters::RedisCounters::from_url(url)
                .await
                .map_err(|e| {
                    anyhow::Error::new(outguard_types::exit::Unavailable(format!(
                        "counters: cannot reach Redis at {redis_url}: {e}"
                    )))
                })?;
            tracing::info!(url = %redis_url, prefix = prefix.as_deref().unwrap_or(outguard_store::redis_counters::DEFAULT_PREFIX), "counters on Redis");
            // Nothing to persist: Redis holds the windows and the sender signals.
            let redis = Arc::new(redis);
            return Ok((redis.clone(), redis, tokio::spawn(async {})));
        }
        Some(url) => anyhow::bail!(
            "counters = {url:?}: use \"memory\", \"redis://…\" or \"redis+cluster://…\""
        ),
    }
    let path = outguard_store::memory_counters::MemoryCounters::snapshot_path(&cfg.server.data_dir);
    let mem = Arc::new(
        outguard_store::memory_counters::MemoryCounters::load(&path)
            .with_context(|| format!("loading counters from {}", path.display()))?,
    );
    let (m, stop) = (mem.clone(), shutdown.clone());
    let task = tokio::spawn(async move {
        let r = m
            .persist_until(
                &path,
                std::time::Duration::from_secs(5),
                now_ms,
                async move { stop.stopped().await },
            )
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot persist counters");
        }
    });
    Ok((mem.clone(), mem, task))
}

/// The tasks `build` started that outlive the relay's handles: joined (with a bound) at the end
/// of a run, after the relay is dropped, so the last counters and trace records are written.
pub struct Background {
    counters: tokio::task::JoinHandle<()>,
    outbox: tokio::task::JoinHandle<()>,
    trace: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Wait for the tasks that end at `Shutdown::stop`: the effects outbox's last round (held
    /// mail, alerts, notices still queued) and the counter persister's last snapshot.
    pub async fn wait_stopped(&mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.outbox).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.counters).await;
    }

    /// Wait for the trace writer's last flush (it ends when every `Tracer` is dropped).
    pub async fn trace_flushed(self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.trace).await;
    }
}

impl Relay {
    /// Assemble the relay from the configuration and an open store: spool, TLS, scanner, trace
    /// writer, counters, queue, enforcement, webhooks. `policy` is false only for the relay
    /// benchmark's policy-off row.
    pub async fn build(
        cfg: Config,
        store: Store,
        policy: bool,
    ) -> anyhow::Result<(Arc<Relay>, Background)> {
        crate::tls::install_provider();
        let spool = Spool::open(cfg.server.data_dir.join("spool"))
            .with_context(|| format!("opening the spool in {}", cfg.server.data_dir.display()))?;
        let tls = crate::tls::ServerTls::new(Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(&cfg)?,
        )));
        let scanner = Arc::new(load_scanner(&cfg)?);
        // The one clock of this process: windows, TTLs, retries and every record's time.
        let clock = outguard_types::time::Clock::new();
        let (tracer, trace) = Tracer::start(store.clone(), clock);
        let shutdown = Shutdown::new();
        let (counters, signals, counters_task) = start_counters(&cfg, &shutdown).await?;
        let queue = outguard_delivery::queue::start(
            &cfg,
            spool.clone(),
            store.clone(),
            tracer.clone(),
            shutdown.clone(),
            clock,
        )
        .await?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let mut outbox_task = None;
        let webhooks = crate::webhooks::Webhooks::with_store(&cfg, store.clone())?;
        let sender_dns = sender_dns::SenderDns::new(
            outguard_delivery::mx::MxResolver::new(&cfg.dns)
                .context("building the DNS resolver")?,
        );
        let auth_dns = auth_dns::AuthDns::new(&cfg.dns);
        // The outbox runs effects on the relay it belongs to, so it holds it weakly.
        let relay = Arc::new_cyclic(|me| {
            let runner = Arc::new(crate::outbox::RelayEffects::new(me.clone(), clock));
            let (outbox, task) =
                crate::outbox::Outbox::start(runner, metrics.clone(), shutdown.clone());
            outbox_task = Some(task);
            Relay {
                outbox,
                clock,
                node: cfg.node_name(),
                auth_limiter: AuthLimiter::new(AuthLimits::from_config(&cfg.listeners)),
                enforcer: crate::enforce::Enforcer {
                    counters,
                    signals,
                    cache: crate::enforce::PolicyCache::default(),
                    enabled: policy,
                },
                alert_cap: std::sync::Mutex::new(outguard_policy::AlertCap::new()),
                webhooks,
                sender_dns,
                auth_dns,
                cfg,
                store,
                spool,
                tracer,
                queue,
                scanner,
                tls,
                shutdown,
                metrics,
            }
        });
        let background = Background {
            counters: counters_task,
            outbox: outbox_task.unwrap_or_else(|| tokio::spawn(async {})),
            trace,
        };
        Ok((relay, background))
    }
}
