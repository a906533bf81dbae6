//! `outguard serve`: builds the relay once from the configuration ([`Relay::build`]), binds every
//! listener before starting anything, prints the first-start operator token, and runs until
//! SIGINT/SIGTERM, then drains (SPEC §6, STYLE rule 5).

use anyhow::Context as _;
use outguard_relay::server::reload::Loader;
use outguard_relay::server::tasks::Tasks;
use outguard_relay::server::{Relay, fd_limit, shutdown};
use outguard_store::Store;
use outguard_types::config::Config;
use outguard_types::model::Role;
use outguard_types::time::now_ms;

/// Print a one-time operator token the first time the store has none.
async fn first_start_token(store: &Store) -> anyhow::Result<()> {
    if !store.has_any_operator_token().await? {
        let (_, secret) = store.create_token(Role::Operator, None, now_ms()).await?;
        println!("operator token: {secret}");
    }
    Ok(())
}

/// Run the relay. `policy` is false only for the relay benchmark's policy-off row; `reload`
/// reads the configuration again on SIGHUP.
pub async fn serve(cfg: Config, policy: bool, reload: Loader) -> anyhow::Result<()> {
    // Refuse a bad configuration (exit 64, every problem listed) before creating anything.
    cfg.check_for_serve_with(&outguard_relay::load_checks)?;
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    let store = crate::cli::open_store_for_serve(&cfg).await?;
    let (relay, mut background) = Relay::build(cfg, store.clone(), policy).await?;
    let shutdown = relay.shutdown.clone();
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
    let tasks = Tasks::new();
    tasks.spawn(
        "policy cache refresh",
        outguard_relay::enforce::cache_refresh_loop(
            relay.clone(),
            std::time::Duration::from_millis(500),
        ),
    );
    let mut dnsbl = outguard_relay::dnsbl::Monitor::new(&relay.cfg)
        .map_err(outguard_relay::dnsbl::startup_error)?;
    dnsbl
        .restore(&relay)
        .await
        .context("loading the DNSBL monitor's state")?;
    fd_limit::check(&relay.cfg);
    let bound = outguard_relay::smtp::listener::bind_all(&relay).await?;
    let postfix = outguard_relay::postfix::bind_all(&relay).await?;
    let http = outguard_admin::http::bind(&relay).await?;
    first_start_token(&store).await?;
    for b in bound {
        tasks.spawn(
            "smtp listener",
            outguard_relay::smtp::listener::serve(relay.clone(), b),
        );
    }
    let pending = std::sync::Arc::new(outguard_relay::postfix::policy::PendingTxns::default());
    for b in postfix {
        tasks.spawn(
            "postfix listener",
            outguard_relay::postfix::serve(relay.clone(), b, pending.clone()),
        );
    }
    if let Some(h) = http {
        tasks.spawn(
            "http listener",
            outguard_admin::http::serve(relay.clone(), h),
        );
    }
    tasks.spawn("dnsbl monitor", dnsbl.run(relay.clone()));
    tasks.spawn(
        "bounce watcher",
        outguard_relay::fbl::bounces::watch(relay.clone()),
    );
    tasks.spawn(
        "provider deferral watcher",
        outguard_relay::fbl::deferrals::watch(relay.clone()),
    );
    tasks.spawn(
        "domain verification",
        outguard_admin::ops::verify::run(relay.clone()),
    );
    tasks.spawn("retention", outguard_relay::retention::run(relay.clone()));
    tasks.spawn(
        "reload on SIGHUP",
        outguard_relay::server::reload::on_hangup(relay.clone(), reload),
    );
    println!("outguard ready (node {})", relay.node);
    shutdown::wait_for_signal().await;
    tracing::info!("shutting down: draining sessions");
    shutdown.drain();
    shutdown.wait_idle(relay.cfg.server.shutdown_grace).await;
    shutdown.stop();
    tasks.join(std::time::Duration::from_secs(5)).await;
    relay.queue.stop().await;
    background.wait_stopped().await;
    drop(relay);
    background.trace_flushed().await;
    store.close().await;
    Ok(())
}
