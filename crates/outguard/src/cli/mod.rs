//! Command-line interface (SPEC §5, §8): clap definitions, global options, exit codes
//! (64 bad usage or config, 69 service unreachable, 1 otherwise).

/// `println!` for what the CLI prints: a reader that went away (`outguard trace | head`) ends
/// the program quietly with exit 0 instead of a panic; any other write error exits 1.
macro_rules! out {
    () => {
        crate::cli::write_out(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        crate::cli::write_out(format_args!($($arg)*), true)
    };
}

/// `print!` (no newline) with the same handling as `out!`.
macro_rules! out_text {
    ($($arg:tt)*) => {
        crate::cli::write_out(format_args!($($arg)*), false)
    };
}

mod alerts;
mod dnsbl;
mod fbl;
mod output;
mod policy;
mod queue;
mod records;
mod remote;
mod restricted;
mod simulate;
mod spam;
mod suppression;
mod trace;
mod via_api;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use outguard_types::config::Config;

pub const EXIT_USAGE: u8 = 64;
pub const EXIT_UNAVAILABLE: u8 = 69;

#[derive(Debug, Parser)]
#[command(
    name = "outguard",
    version,
    about = "Outbound mail relay with outbound spam control"
)]
pub struct Cli {
    /// Configuration file (default: built-in embedded defaults).
    #[arg(long, global = true, env = "OUTGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `[server] data_dir`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// URL of a running server's admin API.
    #[arg(long, global = true, env = "OUTGUARD_SERVER")]
    pub server: Option<String>,
    /// Bearer token for the admin API.
    #[arg(long, global = true, env = "OUTGUARD_TOKEN")]
    pub token: Option<String>,
    /// Print JSON (API field names) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format: `text` or `json`.
    #[arg(long, global = true, default_value = "text")]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay.
    Serve {
        /// Benchmark only: skip the policy step (counters, limits, restrictions) so its cost can
        /// be measured against a run with it. Never for production: nothing is counted.
        #[arg(long, hide = true)]
        bench_policy_off: bool,
    },
    /// Check a configuration file and explain what is wrong.
    CheckConfig { file: PathBuf },
    /// Tenants.
    #[command(subcommand)]
    Tenant(records::TenantCmd),
    /// Accepted domains.
    #[command(subcommand)]
    Domain(records::DomainCmd),
    /// Accounts (SMTP AUTH users).
    #[command(subcommand)]
    Account(records::AccountCmd),
    /// Connectors (tenant mail servers admitted by source IP).
    #[command(subcommand)]
    Connector(records::ConnectorCmd),
    /// Admin API tokens.
    #[command(subcommand)]
    Admin(records::AdminCmd),
    /// The queue: held, quarantined and deferred messages.
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// Find messages and show their trace.
    Trace(trace::TraceArgs),
    /// The spam engine.
    #[command(subcommand)]
    Spam(spam::SpamCmd),
    /// Outbound spam policies of a tenant.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Restricted accounts, connectors and tenants: list and lift.
    #[command(subcommand)]
    Restricted(restricted::RestrictedCmd),
    /// Recorded alerts.
    Alerts(alerts::AlertsArgs),
    /// What-if: replay the recorded traffic with candidate policy values (read-only).
    Simulate(simulate::SimulateArgs),
    /// DNS blocklist checks of the pool IPs.
    #[command(subcommand)]
    Dnsbl(dnsbl::DnsblCmd),
    /// Feedback-loop (ARF) complaint reports.
    #[command(subcommand)]
    Fbl(fbl::FblCmd),
    /// Suppressed recipients (hard bounces) per tenant.
    #[command(subcommand)]
    Suppression(suppression::SuppressionCmd),
    /// A self-contained, narrated scene on loopback: tenants, senders, spam, a restriction.
    Demo {
        /// Do not leave the web UI running at the end (scripted use).
        #[arg(long)]
        no_ui: bool,
        /// Bound on the whole run, in seconds.
        #[arg(long, value_name = "SECS")]
        duration: Option<u64>,
        /// Scale the pauses: 2 = twice as fast.
        #[arg(long, value_name = "X", default_value_t = 1.0)]
        speed: f64,
    },
}

/// Parse, run, map errors to exit codes.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    outguard_relay::server::init_logging(&cli.log_format);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("outguard: {e:#}");
            if let Some(hint) = config_hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// Usage and config errors → 64; an unreachable service → 69; anything else → 1.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<outguard_types::config::ConfigError>()
        .is_some()
        || e.downcast_ref::<UsageError>().is_some()
    {
        return EXIT_USAGE;
    }
    if e.downcast_ref::<Unavailable>().is_some() {
        return EXIT_UNAVAILABLE;
    }
    1
}

/// A hint for a refused configuration: where the key is documented and what it expects.
fn config_hint(e: &anyhow::Error) -> Option<String> {
    use outguard_types::config::ConfigError;
    let ce = e.downcast_ref::<ConfigError>()?;
    Some(match ce {
        ConfigError::Read { .. } => "check the path; `outguard serve` without --config runs the embedded defaults".into(),
        ConfigError::Parse { .. } => "values are TOML: strings in quotes, durations like \"10m\", sizes like \"35MB\"; see outguard.example.toml".into(),
        ConfigError::Invalid { .. } => "every key is documented, with its range and default, in outguard.example.toml (an unknown key is misspelt or in the wrong table)".into(),
    })
}

pub use outguard_types::exit::{Unavailable, UsageError};

/// The configuration in force: the file (if any) plus command-line overrides. For `serve`, the
/// files the config names are checked too, in the same report.
pub fn load_config(
    cli_config: Option<&PathBuf>,
    data_dir: Option<&PathBuf>,
    for_serve: bool,
) -> anyhow::Result<Config> {
    let mut cfg = match cli_config {
        Some(p) if for_serve => Config::load_for_serve_with(p, &outguard_relay::load_checks)?,
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(d) = data_dir {
        cfg.server.data_dir = d.clone();
    }
    Ok(cfg)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("outguard")
        .build()
        .context("starting the async runtime")
}

async fn open_store(cfg: &Config) -> anyhow::Result<outguard_store::Store> {
    outguard_store::files::create_private_dir_all(&cfg.server.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.server.data_dir.display()))?;
    let url = cfg.store_url();
    outguard_store::Store::open(&url)
        .await
        .map_err(|e| anyhow::Error::new(Unavailable(format!("cannot open store {url}: {e}"))))
}

/// The store for `serve`: same as the CLI's, but an unreachable store fails start-up clearly.
/// First, a data_dir left wider by an older version (or another umask) is made owner-only
/// (SPEC §9 "Files"): directories 0700, files 0600.
pub async fn open_store_for_serve(cfg: &Config) -> anyhow::Result<outguard_store::Store> {
    let dir = &cfg.server.data_dir;
    outguard_store::files::create_private_dir_all(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    let changed = outguard_store::files::tighten_tree(dir)
        .with_context(|| format!("making data dir {} owner-only", dir.display()))?;
    if changed > 0 {
        tracing::warn!(dir = %dir.display(), changed, "data_dir was readable by others: made owner-only");
    }
    open_store(cfg).await
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::CheckConfig { file } = &cli.command {
        // What `serve` checks before it creates anything: values and the files named.
        let cfg = Config::load_for_serve_with(file, &outguard_relay::load_checks)?;
        for w in cfg.warnings() {
            eprintln!("warning: {w}");
        }
        out!(
            "{}: ok ({} pools, {} routes)",
            file.display(),
            cfg.pools.len(),
            cfg.routes.len()
        );
        return Ok(0);
    }
    if let Command::Demo {
        no_ui,
        duration,
        speed,
    } = cli.command
    {
        return crate::demo::run(crate::demo::DemoArgs {
            no_ui,
            duration: duration.map(std::time::Duration::from_secs),
            speed,
        });
    }
    // `--server`: the management verbs go to the running server's API, never the local store.
    if let Some(server) = cli.server.clone().filter(|s| !s.trim().is_empty())
        && via_api::routed(&cli.command)
    {
        let api = remote::Remote::new(&server, cli.token.as_deref())?;
        return runtime()?.block_on(via_api::run(cli.command, &api, cli.json));
    }
    let for_serve = matches!(cli.command, Command::Serve { .. });
    let cfg = load_config(cli.config.as_ref(), cli.data_dir.as_ref(), for_serve)?;
    let json = cli.json;
    let learn_into_store = matches!(
        &cli.command,
        Command::Spam(spam::SpamCmd::Learn { overlay: None, .. })
    );
    if let Command::Spam(cmd) = cli.command {
        let code = if learn_into_store {
            runtime()?.block_on(async {
                let store = open_store(&cfg).await?;
                spam::learn_into_store(&store, cmd, json, cfg.spam.model.as_deref()).await
            })?
        } else {
            spam::run(cmd, json, cfg.spam.model.as_deref())?
        };
        return Ok(u8::try_from(code).unwrap_or(1));
    }
    let rt = runtime()?;
    rt.block_on(async move {
        if let Command::Serve { bench_policy_off } = cli.command {
            let (path, dir) = (cli.config.clone(), cli.data_dir.clone());
            let reload: outguard_relay::server::reload::Loader =
                Box::new(move || load_config(path.as_ref(), dir.as_ref(), true));
            return crate::serve::serve(cfg, !bench_policy_off, reload)
                .await
                .map(|_| 0);
        }
        let store = open_store(&cfg).await?;
        match cli.command {
            Command::Tenant(c) => records::run_tenant(c, &store, json).await?,
            Command::Domain(c) => records::run_domain(c, &store, json).await?,
            Command::Account(c) => records::run_account(c, &store, json).await?,
            Command::Connector(c) => records::run_connector(c, &store, json).await?,
            Command::Admin(c) => records::run_admin(c, &store, json).await?,
            Command::Queue(c) => queue::run(c, &cfg, &store, json).await?,
            Command::Trace(a) => trace::run(a, &store, json).await?,
            Command::Policy(c) => policy::run(c, &cfg, &store, json).await?,
            Command::Restricted(c) => restricted::run(c, &cfg, &store, json).await?,
            Command::Alerts(a) => alerts::run(a, &store, json).await?,
            Command::Simulate(a) => simulate::run(a, &cfg, &store, json).await?,
            Command::Dnsbl(c) => return dnsbl::run(c, &cfg, &store, json).await,
            Command::Fbl(c) => return fbl::run(c, &store, json).await,
            Command::Suppression(c) => suppression::run(c, &cfg, &store, json).await?,
            Command::Serve { .. }
            | Command::CheckConfig { .. }
            | Command::Spam(_)
            | Command::Demo { .. } => {}
        }
        Ok(0)
    })
}

/// The one place CLI output is written (see `out!`, `out_text!`).
pub(crate) fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write as _;
    let mut so = std::io::stdout().lock();
    let end: &[u8] = if newline { b"\n" } else { b"" };
    let written = so
        .write_fmt(args)
        .and_then(|()| so.write_all(end))
        .and_then(|()| so.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("outguard: cannot write output: {e}");
        std::process::exit(1);
    }
}
