//! `outguard serve`: builds the relay from the configuration (store, spool, queue, scanner,
//! TLS), binds every listener before starting anything, prints the first-start operator token,
//! and runs until SIGINT/SIGTERM, then drains (SPEC §6, STYLE rule 5).

pub mod accept;
pub mod conn_limit;
pub mod fd_limit;
pub(crate) mod http;
mod http_listener;
mod seams;
pub mod sender_dns;
mod shutdown;

use std::sync::Arc;

use anyhow::Context as _;
use outguard_store::Store;
use outguard_store::spool::Spool;
use outguard_types::config::Config;
use outguard_types::model::Role;

pub use shutdown::Shutdown;

use crate::delivery::queue::QueueHandle;
use crate::smtp::auth_limit::{AuthLimiter, AuthLimits};
use crate::trace::{Tracer, now_ms};

/// Everything a session, the pipeline and delivery share. One per process, behind an `Arc`.
pub struct Relay {
    pub cfg: Config,
    pub node: String,
    pub store: Store,
    pub spool: Spool,
    pub tracer: Tracer,
    pub queue: QueueHandle,
    pub scanner: Arc<outguard_spam::Engine>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub auth_limiter: AuthLimiter,
    pub sender_dns: sender_dns::SenderDns,
    pub enforcer: crate::enforce::Enforcer,
    pub alert_cap: std::sync::Mutex<outguard_policy::AlertCap>,
    pub webhooks: crate::webhooks::Webhooks,
    pub shutdown: Shutdown,
    /// Counters for `/metrics` (messages by disposition and pool, scan latency).
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("OUTGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

/// Print a one-time operator token the first time the store has none.
async fn first_start_token(store: &Store) -> anyhow::Result<()> {
    if !store.has_any_operator_token().await? {
        let (_, secret) = store.create_token(Role::Operator, None, now_ms()).await?;
        println!("operator token: {secret}");
    }
    Ok(())
}

/// The counter store. `memory` (default): in-process windows persisted under data_dir (saved
/// every few seconds and at shutdown, loaded at start so a restart keeps the windows).
/// `redis://…[?prefix=NAME]` (cluster mode): shared windows on Redis, time from Redis; it must
/// answer at start, and later outages defer submissions (`451 4.3.0`) until it is back.
async fn start_counters(
    cfg: &Config,
    shutdown: &Shutdown,
) -> anyhow::Result<(
    Arc<dyn outguard_policy::Counters>,
    tokio::task::JoinHandle<()>,
)> {
    match cfg.counters.as_deref() {
        None | Some("memory") => {}
        Some(url) if url.starts_with("redis://") => {
            let (redis_url, prefix) = outguard_store::redis_counters::split_prefix(url);
            // Unreachable at start: exit 69 (service unavailable), like an unreachable store.
            let redis = outguard_store::redis_counters::RedisCounters::from_url(url)
                .await
                .map_err(|e| {
                    anyhow::Error::new(crate::cli::Unavailable(format!(
                        "counters: cannot reach Redis at {redis_url}: {e}"
                    )))
                })?;
            tracing::info!(url = %redis_url, prefix = prefix.as_deref().unwrap_or(outguard_store::redis_counters::DEFAULT_PREFIX), "counters on Redis");
            // Nothing to persist: Redis holds the windows.
            return Ok((Arc::new(redis), tokio::spawn(async {})));
        }
        Some(url) => anyhow::bail!("counters = {url:?}: use \"memory\" or \"redis://…\""),
    }
    let path = outguard_policy::MemoryCounters::snapshot_path(&cfg.server.data_dir);
    let mem = Arc::new(
        outguard_policy::MemoryCounters::load(&path)
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
    Ok((mem, task))
}

/// Run the relay. `policy` is false only for the relay benchmark's policy-off row.
pub async fn serve(cfg: Config, policy: bool) -> anyhow::Result<()> {
    // Refuse a bad configuration (exit 64, every problem listed) before creating anything.
    cfg.check_for_serve()?;
    crate::tls::install_provider();
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    let store = crate::cli::open_store_for_serve(&cfg).await?;
    let spool = Spool::open(cfg.server.data_dir.join("spool"))
        .with_context(|| format!("opening the spool in {}", cfg.server.data_dir.display()))?;
    let tls = Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
        &cfg,
    )?));
    let scanner = Arc::new(load_scanner(&cfg)?);
    let (tracer, trace_task) = Tracer::start(store.clone());
    let shutdown = Shutdown::new();
    let (counters, counters_task) = start_counters(&cfg, &shutdown).await?;
    let queue = crate::delivery::queue::start(
        &cfg,
        spool.clone(),
        store.clone(),
        tracer.clone(),
        shutdown.clone(),
    )
    .await?;
    let relay = Arc::new(Relay {
        node: cfg.node_name(),
        auth_limiter: AuthLimiter::new(AuthLimits::from_config(&cfg.listeners)),
        enforcer: crate::enforce::Enforcer {
            counters,
            cache: crate::enforce::PolicyCache::default(),
            enabled: policy,
        },
        alert_cap: std::sync::Mutex::new(outguard_policy::AlertCap::new()),
        webhooks: crate::webhooks::Webhooks::with_store(&cfg, store.clone())?,
        sender_dns: sender_dns::SenderDns::new(
            crate::delivery::mx::MxResolver::new(&cfg.dns).context("building the DNS resolver")?,
        ),
        cfg,
        store: store.clone(),
        spool,
        tracer,
        queue,
        scanner,
        tls,
        shutdown: shutdown.clone(),
        metrics: Arc::new(crate::metrics::Metrics::new()),
    });
    // Restrictions made while this node was down (here or on another node): hold their mail.
    for subject in relay
        .enforcer
        .cache
        .refresh_restrictions(&relay.store)
        .await
        .context("loading restrictions")?
    {
        relay.hold_queued(&subject).await;
    }
    tokio::spawn(crate::enforce::cache_refresh_loop(
        relay.clone(),
        std::time::Duration::from_millis(500),
    ));
    let mut dnsbl = crate::dnsbl::Monitor::new(&relay.cfg).map_err(crate::dnsbl::startup_error)?;
    dnsbl
        .restore(&relay)
        .await
        .context("loading the DNSBL monitor's state")?;
    fd_limit::check(&relay.cfg);
    let bound = crate::smtp::listener::bind_all(&relay).await?;
    let http = http::bind(&relay).await?;
    first_start_token(&store).await?;
    for b in bound {
        tokio::spawn(crate::smtp::listener::serve(relay.clone(), b));
    }
    if let Some(h) = http {
        tokio::spawn(http_listener::serve(relay.clone(), h));
    }
    tokio::spawn(dnsbl.run(relay.clone()));
    tokio::spawn(crate::fbl::bounces::watch(relay.clone()));
    tokio::spawn(crate::ops::verify::run(relay.clone()));
    println!("outguard ready (node {})", relay.node);
    shutdown::wait_for_signal().await;
    tracing::info!("shutting down: draining sessions");
    shutdown.drain();
    shutdown.wait_idle(relay.cfg.server.shutdown_grace).await;
    shutdown.stop();
    relay.queue.stop().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), counters_task).await;
    drop(relay);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), trace_task).await;
    store.close().await;
    Ok(())
}
