//! `outguard demo` (SPEC §7): a complete, self-contained scene on loopback in a temporary
//! directory — DNS for the demo domains, destination MX sinks, the relay (this binary's own
//! `serve`) with two tenants, and simulated senders — narrated as it happens. It ends with
//! machine-checkable `demo: …` lines and, unless `--no-ui`, leaves the relay and its web UI
//! running with a login token until Ctrl-C. Exit 0 when the whole story happened, 1 otherwise.

mod client;
mod messages;
mod narrate;
mod scene;
mod story;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use outguard_types::config::Config;

use narrate::{Deliveries, Pace, outguard_id, watch_deliveries};
use scene::{HIGH_RISK_IP, REGULAR_IP, RelayProc, TempDir, World, config_text, pool_of};
use story::{Facts, Stage};

/// Options of `outguard demo`.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    pub no_ui: bool,
    /// Bound on the whole run, web UI included.
    pub duration: Option<Duration>,
    /// Pause multiplier: 2 = twice as fast.
    pub speed: f64,
}

/// Run the demo; the exit code.
pub fn run(args: DemoArgs) -> anyhow::Result<u8> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(crate::cli::UsageError(format!(
            "--speed: {} must be a positive number",
            args.speed
        ))
        .into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("outguard-demo")
        .build()?;
    rt.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<u8> {
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    let pace = Pace {
        speed: args.speed,
        start,
    };
    let tmp = TempDir::new()?;
    println!(
        "outguard demo: everything runs on loopback in {}",
        tmp.path().display()
    );
    let world = Arc::new(World::start().await?);
    let cfg_path = tmp.path().join("outguard.toml");
    std::fs::write(
        &cfg_path,
        config_text(&tmp.path().join("data"), world.dns.addr(), world.port),
    )
    .context("writing the demo config")?;
    println!(
        "  DNS {} · MX sinks: example.com 127.0.0.10, acme.example/globex.example 127.0.0.11, example.net 127.0.0.12 (greylisting) · port {}",
        world.dns.addr(),
        world.port
    );
    let mut facts = Facts::default();
    story::provision(&pace, &cfg_path).await?;
    facts.steps_done = 1;
    let relay = RelayProc::start(&cfg_path, &tmp.path().join("relay.log")).await?;
    println!();
    println!(
        "  relay started: submission {} · web UI http://{} · pools regular {REGULAR_IP}, high-risk {HIGH_RISK_IP}",
        relay.addr("submission")?,
        relay.addr("http")?
    );
    let cfg = Config::load(&cfg_path)?;
    let store = outguard_store::Store::open(&cfg.store_url())
        .await
        .context("opening the demo store")?;
    let deliveries = Deliveries::new(world.clone());
    let watcher = watch_deliveries(pace, deliveries.clone());
    let stage = Stage {
        pace,
        config: &cfg_path,
        relay: &relay,
        world: &world,
        store: &store,
        deliveries: &deliveries,
    };
    let told = match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), story::tell(&stage, &mut facts))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("--duration ran out"))),
        None => story::tell(&stage, &mut facts).await,
    };
    if let Err(e) = &told {
        println!("demo: the story stopped early: {e:#}");
    }
    wait_for_deliveries(&world, &facts, deadline).await;
    watcher.abort();
    let ok = summary(&world, &facts);
    if !args.no_ui {
        ui(&stage, deadline).await?;
    }
    store.close().await;
    relay.stop().await;
    Ok(if ok { 0 } else { 1 })
}

/// The first delivery of a queued id: (pool, source IP).
fn delivered_from(world: &World, id: &str) -> Option<(&'static str, std::net::IpAddr)> {
    world
        .sinks()
        .iter()
        .flat_map(|(_, s)| s.messages())
        .find(|m| outguard_id(&m.data).as_deref() == Some(id))
        .map(|m| (pool_of(m.peer.ip()), m.peer.ip()))
}

/// Give the queue a few seconds to deliver what the summary talks about.
async fn wait_for_deliveries(world: &World, facts: &Facts, deadline: Option<Instant>) {
    let until = Instant::now() + Duration::from_secs(15);
    let until = deadline.map_or(until, |d| d.min(until));
    while Instant::now() < until {
        let clean = facts
            .clean_ids
            .iter()
            .any(|id| delivered_from(world, id).is_some());
        let spam = facts
            .spam_ids
            .iter()
            .any(|id| delivered_from(world, id).is_some());
        if clean && spam {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One outcome: did it happen, the line when it did, the line when it did not.
type Check = (bool, String, String);

/// Where the first delivered message of `ids` came from, checked against the expected pool.
fn pool_check(
    world: &World,
    ids: &[String],
    what: &str,
    pool: &str,
    ip: std::net::Ipv4Addr,
) -> Check {
    let seen = ids.iter().find_map(|id| delivered_from(world, id));
    let at = seen.map_or(ip.into(), |c| c.1);
    let good = seen.is_some_and(|(p, _)| p == pool);
    (
        good,
        format!("{what} left from {pool} {at}"),
        format!("MISSING {what} from {pool} (saw {seen:?})"),
    )
}

/// The outcomes of the story, in the order the summary prints them.
fn checks(world: &World, f: &Facts) -> Vec<Check> {
    let starts = |r: &Option<String>, code: &str| r.as_deref().is_some_and(|r| r.starts_with(code));
    let (nomx, bulk, mallory, admin) =
        (story::NO_MX, story::BULK, story::MALLORY, story::ACME_ADMIN);
    let limit = f.restricted.as_ref().map_or("", |r| r.1.as_str());
    vec![
        pool_check(world, &f.clean_ids, "clean mail", "regular", REGULAR_IP),
        pool_check(world, &f.spam_ids, "spam", "high-risk", HIGH_RISK_IP),
        (
            f.no_mx_pool.as_deref() == Some("high-risk"),
            format!("sender without MX/A {nomx} queued for high-risk"),
            format!(
                "MISSING sender without MX/A on high-risk (pool {:?})",
                f.no_mx_pool
            ),
        ),
        (
            starts(&f.bulk_quota_reply, "550 5.2.2")
                && starts(&f.bulk_restricted_reply, "550 5.1.8"),
            format!("bulk sender {bulk} refused with 550 5.2.2, then 550 5.1.8"),
            format!(
                "MISSING bulk refusals ({:?}, {:?})",
                f.bulk_quota_reply, f.bulk_restricted_reply
            ),
        ),
        (
            f.restricted.is_some(),
            format!("restricted {mallory} ({limit})"),
            format!("MISSING restriction of {mallory}"),
        ),
        (
            starts(&f.spam_refused_reply, "550 5.1.8"),
            format!("{mallory} then refused with 550 5.1.8"),
            format!("MISSING 550 5.1.8 for {mallory}"),
        ),
        (
            f.notification_to.is_some(),
            format!("notification received by {admin}"),
            format!("MISSING notification to {admin}"),
        ),
        (
            f.held > 0,
            format!("held {} message(s) of {mallory}", f.held),
            format!("MISSING held mail of {mallory}"),
        ),
    ]
}

/// Print the outcome lines (`demo: …`); true when the whole story happened.
fn summary(world: &World, f: &Facts) -> bool {
    println!();
    let mut ok = f.steps_done == story::STEPS;
    for (good, yes, no) in checks(world, f) {
        ok &= good;
        println!("demo: {}", if good { yes } else { no });
    }
    if ok {
        println!("demo: story complete");
    } else {
        println!(
            "demo: story incomplete ({}/{} steps)",
            f.steps_done,
            story::STEPS
        );
    }
    ok
}

/// Leave the relay and its web UI up with a tenant-admin login token until Ctrl-C (or the end
/// of `--duration`).
async fn ui(stage: &Stage<'_>, deadline: Option<Instant>) -> anyhow::Result<()> {
    let token = scene::cli(
        stage.config,
        &[
            "admin",
            "token",
            "create",
            "--role",
            "tenant_admin",
            "--tenant",
            "acme",
        ],
        None,
    )
    .await?;
    println!();
    println!("web UI:   http://{}/login", stage.relay.addr("http")?);
    println!("token:    {}   (tenant_admin of acme)", token.trim());
    if let Some(t) = &stage.relay.operator_token {
        println!("operator: {t}");
    }
    println!(
        "CLI:      outguard --config {} trace --from {}",
        stage.config.display(),
        story::MALLORY
    );
    println!("Press Ctrl-C to stop (the temporary directory is removed).");
    match deadline {
        Some(d) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = tokio::time::sleep_until(d.into()) => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    Ok(())
}
