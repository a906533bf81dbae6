//! The configuration file (`outguard.toml`, SPEC §6, every key documented in
//! `outguard.example.toml`). Parsed with `deny_unknown_fields` so a misspelt key is refused with
//! its name and line; human values ("10m", "35MB") parse into types here, before anything binds.
//! Every problem of a file is reported at once, each with its key and line (`problems`): type
//! errors, unknown keys, ranges (`checks`), and for `check-config` and `serve` the files the
//! config names (`files`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::PolicySettings;

mod bulk;
mod checks;
mod deferrals;
mod files;
mod login;
mod mta_sts;
mod problems;
mod ramp;
mod retention;
mod shaping;
mod suppression;
mod trust;
mod values;

pub use bulk::{BulkConfig, BulkProvider, default_providers as default_bulk_providers};
pub use deferrals::{ProviderDeferralsConfig, default_sender_patterns};
pub use login::LoginBehaviourConfig;
pub use mta_sts::MtaStsConfig;
pub use problems::Problem;
use problems::Problems;
pub use ramp::TrustRampConfig;
pub use retention::RetentionConfig;
pub use shaping::{AdaptiveConfig, ShapingRule, ThrottleAction, default_patterns, default_rules};
pub use suppression::SuppressionConfig;
pub use trust::{FblConfig, SrsConfig, WebhookConfig, WebhooksConfig};
use values::{describe_toml_error, human_duration, human_durations, human_size, port, socket_addr};
pub use values::{dnsbl_code_range, key_line, parse_duration, parse_size, valid_dns_name};

/// A refused configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML: nothing after the syntax error can be read, so this is the only problem told.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    /// Every problem found, in file order, each naming its key.
    #[error("{path}: {}", list(.problems))]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The keys refused, in order (empty for a file that could not be read or is not TOML).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::Invalid { problems, .. } => {
                problems.iter().map(|p| p.key.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// One problem on the error's line; several as a count and one indented line each.
fn list(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut s = format!("{} problems", many.len());
            for p in many {
                s.push_str("\n  ");
                s.push_str(&p.to_string());
            }
            s
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Records store URL: `sqlite://PATH` (default: `<data_dir>/outguard.db`) or `postgres://…`.
    pub store: Option<String>,
    /// Counter store URL: `memory` (default, persisted under data_dir) or `redis://…`.
    pub counters: Option<String>,
    pub server: ServerConfig,
    pub listeners: ListenersConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub dns: DnsConfig,
    pub delivery: DeliveryConfig,
    pub privacy: PrivacyConfig,
    pub pools: Vec<PoolConfig>,
    pub routes: Vec<RouteConfig>,
    /// `[[shaping]]`: per destination (and source) delivery limits (issue 22); absent: the
    /// largest providers' `default_rules()`.
    pub shaping: Vec<ShapingRule>,
    pub dnsbl: DnsblConfig,
    pub fbl: FblConfig,
    /// Sender Rewriting Scheme for forwarded mail (SPEC §2.5, §9); absent: not rewritten.
    pub srs: Option<SrsConfig>,
    pub notifications: NotificationsConfig,
    pub policy: PolicyTable,
    pub spam: SpamConfig,
    pub webhooks: WebhooksConfig,
    pub dkim: Vec<DkimConfig>,
    /// How long finished records are kept (issue 17).
    pub retention: RetentionConfig,
    /// The Postfix policy service and milter (`[listeners] policy`, `milter`; issue 23).
    pub policy_service: PolicyServiceConfig,
    /// Hard-bounced recipients refused per tenant (issue 25).
    pub suppression: SuppressionConfig,
    /// New accounts start at a fraction of their limits (issue 25).
    pub trust_ramp: TrustRampConfig,
    /// Bulk streams and their sender-requirement checks (issue 25 part 4).
    pub bulk: BulkConfig,
    /// Where accounts log in from (issue 25 part 1).
    pub login_behaviour: LoginBehaviourConfig,
    /// Provider deferrals that blame the sender, counted per account and tenant (issue 25
    /// part 5).
    pub provider_deferrals: ProviderDeferralsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: None,
            counters: None,
            server: ServerConfig::default(),
            listeners: ListenersConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            dns: DnsConfig::default(),
            delivery: DeliveryConfig::default(),
            privacy: PrivacyConfig::default(),
            pools: default_pools(),
            routes: Vec::new(),
            shaping: default_rules(),
            dnsbl: DnsblConfig::default(),
            fbl: FblConfig::default(),
            srs: None,
            notifications: NotificationsConfig::default(),
            policy: PolicyTable::default(),
            spam: SpamConfig::default(),
            webhooks: WebhooksConfig::default(),
            dkim: Vec::new(),
            retention: RetentionConfig::default(),
            policy_service: PolicyServiceConfig::default(),
            suppression: SuppressionConfig::default(),
            trust_ramp: TrustRampConfig::default(),
            bulk: BulkConfig::default(),
            login_behaviour: LoginBehaviourConfig::default(),
            provider_deferrals: ProviderDeferralsConfig::default(),
        }
    }
}

/// `[policy_service]`: how the Postfix policy service and milter treat mail Outguard cannot
/// attribute (no `sasl_username` of a known account, no connector for the client address).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyServiceConfig {
    pub unknown: UnknownSender,
    /// CIDRs the policy and milter listeners take connections from (the Postfix hosts).
    pub clients: Vec<String>,
}

impl Default for PolicyServiceConfig {
    fn default() -> Self {
        PolicyServiceConfig {
            unknown: UnknownSender::Dunno,
            clients: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// What an unattributable transaction gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSender {
    /// `action=DUNNO` (the milter accepts without a scan): Postfix decides alone.
    #[default]
    Dunno,
    /// `action=550 5.7.1 …` (the milter rejects likewise).
    Reject,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Our name: greeting, EHLO default, DSN reporting MTA, Message-IDs.
    pub hostname: String,
    pub data_dir: PathBuf,
    /// Node name in cluster mode (defaults to hostname).
    pub node: Option<String>,
    /// Grace period for in-flight sessions on shutdown.
    #[serde(with = "human_duration")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: "outguard.localhost".into(),
            data_dir: PathBuf::from("outguard-data"),
            node: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenersConfig {
    #[serde(with = "socket_addr")]
    pub submission: Option<SocketAddr>,
    #[serde(with = "socket_addr")]
    pub submissions: Option<SocketAddr>,
    #[serde(with = "socket_addr")]
    pub connector: Option<SocketAddr>,
    #[serde(with = "socket_addr")]
    pub fbl: Option<SocketAddr>,
    #[serde(with = "socket_addr")]
    pub http: Option<SocketAddr>,
    /// Postfix `check_policy_service` (SMTPD access policy delegation); off unless set.
    #[serde(with = "socket_addr")]
    pub policy: Option<SocketAddr>,
    /// Postfix `smtpd_milters` (the sendmail milter protocol); off unless set.
    #[serde(with = "socket_addr")]
    pub milter: Option<SocketAddr>,
    /// Offer AUTH without TLS to clients on 127.0.0.0/8 and ::1 (tests, local tools).
    pub allow_plaintext_auth_on_loopback: bool,
    /// Concurrent sessions per listener; more get `421 4.7.0`.
    pub max_connections: usize,
    /// Idle time allowed between two commands.
    #[serde(with = "human_duration")]
    pub command_timeout: Duration,
    /// Whole-session time budget.
    #[serde(with = "human_duration")]
    pub session_timeout: Duration,
    /// Failed AUTH attempts per client IP within `auth_failure_window` before `454 4.7.0`.
    pub max_auth_failures: u32,
    #[serde(with = "human_duration")]
    pub auth_failure_window: Duration,
    /// Failed AUTH attempts per account (from any IPs) within `auth_failure_window` before the
    /// account answers `454 4.7.0`.
    pub max_auth_failures_per_account: u32,
    /// How long a locked IP or account answers `454 4.7.0`.
    #[serde(with = "human_duration")]
    pub auth_lockout: Duration,
    /// Concurrent SMTP sessions per client IP (IPv6: per /64) on each listener; more get
    /// `421 4.7.0 Too many connections from your address`.
    pub max_connections_per_ip: usize,
    /// Time a client of the HTTP listener has to send a request's header (also the idle limit
    /// of a kept-alive connection).
    #[serde(with = "human_duration")]
    pub http_header_timeout: Duration,
    /// Concurrent HTTP connections in all; more get `503`.
    pub http_max_connections: usize,
    /// Concurrent HTTP connections per client IP (IPv6: per /64); more get `429`.
    pub http_max_connections_per_ip: usize,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        ListenersConfig {
            submission: Some(([127, 0, 0, 1], 2587).into()),
            submissions: Some(([127, 0, 0, 1], 2465).into()),
            connector: Some(([127, 0, 0, 1], 2525).into()),
            fbl: Some(([127, 0, 0, 1], 2526).into()),
            http: Some(([127, 0, 0, 1], 8025).into()),
            policy: None,
            milter: None,
            allow_plaintext_auth_on_loopback: false,
            max_connections: 1000,
            command_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(1800),
            max_auth_failures: 10,
            auth_failure_window: Duration::from_secs(900),
            max_auth_failures_per_account: 30,
            auth_lockout: Duration::from_secs(900),
            max_connections_per_ip: 20,
            http_header_timeout: Duration::from_secs(10),
            http_max_connections: 1024,
            http_max_connections_per_ip: 64,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; when absent a self-signed certificate is generated in data_dir.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// 1–1000; past it `452 4.5.3`.
    pub max_recipients_per_message: u32,
    /// Per AUTH account; past it `451 4.7.0`.
    pub messages_per_minute: u32,
    /// Bytes; accepts "35MB", "10MiB", "1000000".
    #[serde(with = "human_size")]
    pub max_message_size: u64,
    /// Messages per sliding hour a tenant's connectors may send from domains it has not
    /// registered (verified) before the tenant is blocked with `550 5.7.750` until an operator
    /// lifts it (SPEC §9).
    pub unregistered_domain_messages_per_hour: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_recipients_per_message: 500,
            messages_per_minute: 30,
            max_message_size: 35 * 1000 * 1000,
            unregistered_domain_messages_per_hour: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// `IP:PORT` of the resolver to ask (tests run their own); system resolver when absent.
    #[serde(with = "socket_addr")]
    pub resolver: Option<SocketAddr>,
    /// How often `serve` looks for the `outguard-verify=<token>` TXT record of every pending
    /// domain (SPEC §9).
    #[serde(with = "human_duration")]
    pub domain_verify_interval: Duration,
    /// Whether DNSSEC results may be believed, and so whether DANE (RFC 7672) applies.
    pub dnssec: Dnssec,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolver: None,
            domain_verify_interval: Duration::from_secs(600),
            dnssec: Dnssec::default(),
        }
    }
}

/// `[dns] dnssec`: what Postfix calls `smtp_dns_support_level` (`enabled` vs `dnssec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dnssec {
    /// No DNSSEC: answers are never taken as validated, so DANE never applies.
    #[default]
    Off,
    /// Believe the AD (authenticated data) bit of answers from `dns.resolver`, which the
    /// operator promises is a validating resolver on loopback (unbound, knot-resolver): DANE
    /// TLSA records under validated answers then make TLS mandatory and authenticated.
    TrustAd,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Destination port (25; tests override).
    #[serde(with = "port")]
    pub port: u16,
    /// Waits between attempts; the last one repeats until `max_age`.
    #[serde(with = "human_durations")]
    pub retry_schedule: Vec<Duration>,
    #[serde(with = "human_duration")]
    pub max_age: Duration,
    /// Concurrent connections per destination (MX site).
    pub max_connections_per_destination: usize,
    /// Concurrent outbound connections in all.
    pub max_connections: usize,
    #[serde(with = "human_duration")]
    pub connect_timeout: Duration,
    #[serde(with = "human_duration")]
    pub command_timeout: Duration,
    /// Which recipients get `X-Outguard-Verdict` (issue 21): the tenant's own (internal) ones,
    /// everyone, or nobody.
    pub verdict_header: VerdictHeader,
    /// TLS policy for every destination without its own (`tls_policies`, `[[routes]] tls`).
    pub tls: TlsPolicy,
    /// TLS policy per recipient domain (`"bank.example" = "verify"`).
    pub tls_policies: std::collections::BTreeMap<String, TlsPolicy>,
    /// PEM file of the CAs `verify` trusts instead of the system's roots (a private PKI, tests).
    pub tls_ca_file: Option<PathBuf>,
    /// MTA-STS (RFC 8461) for destinations without a TLS policy of the operator's.
    pub mta_sts: MtaStsConfig,
    /// How delivery slows down when a receiver says it throttles us (issue 22).
    pub adaptive: AdaptiveConfig,
}

/// How much TLS a destination must offer before it gets mail (issue 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsPolicy {
    /// STARTTLS when offered, certificate not checked; plaintext when it is not (RFC 7435).
    #[default]
    Opportunistic,
    /// STARTTLS required, certificate chain valid and naming the MX host; else `4xx`, retried.
    Verify,
    /// STARTTLS required (any certificate); else `4xx`, retried.
    Required,
    /// STARTTLS required and the certificate must match the MX host's DNSSEC-validated TLSA
    /// records (RFC 7672); else `4xx`, retried. Never configured: delivery applies it when the
    /// destination publishes TLSA records and `[dns] dnssec = "trust_ad"`.
    #[serde(skip)]
    Dane,
}

impl TlsPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsPolicy::Opportunistic => "opportunistic",
            TlsPolicy::Verify => "verify",
            TlsPolicy::Required => "required",
            TlsPolicy::Dane => "dane",
        }
    }
}

/// `[delivery] verdict_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictHeader {
    /// Only recipients in one of the sender's tenant's accepted domains (SPEC §1).
    #[default]
    Internal,
    All,
    None,
}

/// `[privacy]`: what the headers we add tell about the submitting client.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Leave the client's IP address and EHLO name out of the `Received:` field we add (an end
    /// user's home address is nobody else's business); off by default.
    pub hide_client_ip: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let m = |x: u64| Duration::from_secs(60 * x);
        DeliveryConfig {
            port: 25,
            retry_schedule: vec![m(5), m(10), m(20), m(40), m(60), m(120), m(240), m(480)],
            max_age: Duration::from_secs(5 * 24 * 3600),
            max_connections_per_destination: 20,
            max_connections: 200,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            verdict_header: VerdictHeader::default(),
            tls: TlsPolicy::default(),
            tls_policies: std::collections::BTreeMap::new(),
            tls_ca_file: None,
            mta_sts: MtaStsConfig::default(),
            adaptive: AdaptiveConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// `regular`, `high-risk`, `relay`, or an operator's own pool.
    pub name: String,
    /// Local addresses outbound connections are bound to (tests: 127.0.0.x).
    pub source_ips: Vec<IpAddr>,
    /// EHLO name used from this pool.
    pub ehlo: Option<String>,
}

pub fn default_pools() -> Vec<PoolConfig> {
    ["regular", "high-risk", "relay"]
        .into_iter()
        .map(|name| PoolConfig {
            name: name.into(),
            source_ips: vec![IpAddr::from([127, 0, 0, 1])],
            ehlo: None,
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Recipient domains, or `"*"` for every domain (smarthost).
    pub domains: Vec<String>,
    /// `host:port` or `ip:port` used instead of the MX.
    pub next_hop: String,
    /// TLS policy towards `next_hop` (default: `[delivery] tls`).
    #[serde(default)]
    pub tls: Option<TlsPolicy>,
    /// Smarthost login (AUTH PLAIN, or LOGIN when PLAIN is not offered); needs `tls = "required"`
    /// or `"verify"` so the password never crosses in plaintext.
    #[serde(default)]
    pub auth_user: Option<String>,
    /// File holding the smarthost password (first line; not in the config itself).
    #[serde(default)]
    pub auth_password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsblConfig {
    #[serde(with = "human_duration")]
    pub interval: Duration,
    pub clear_checks: u32,
    /// Empty = the built-in defaults (Spamhaus ZEN, SpamCop, Barracuda, UCEPROTECT L1, PSBL).
    pub zones: Vec<DnsblZoneConfig>,
}

impl Default for DnsblConfig {
    fn default() -> Self {
        DnsblConfig {
            interval: Duration::from_secs(900),
            clear_checks: 2,
            zones: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DnsblZoneConfig {
    pub name: String,
    /// Listing codes: `"127.0.0.2"` or ranges `"127.0.0.4-127.0.0.7"`.
    #[serde(default)]
    pub listed: Vec<String>,
    /// Codes that mean the query failed (never a listing).
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Default `Outguard <postmaster@HOSTNAME>`.
    pub from: Option<String>,
    /// Who gets service-wide alerts (`ip_listed`, `ip_delisted`).
    pub operator_recipients: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyTable {
    /// Service-wide defaults for every tenant's default policy.
    pub default: PolicySettings,
    /// The highest value a tenant admin may give each numeric policy key (SPEC §9).
    pub ceilings: crate::ceilings::PolicyCeilings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamConfig {
    /// Score at or above which a message is `suspicious` (None = the model's default).
    pub suspicious_score: Option<f64>,
    /// Score at or above which a message is `spam`.
    pub spam_score: Option<f64>,
    /// Path of a model file to use instead of the shipped one.
    pub model: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    /// PEM private key (RSA or Ed25519, PKCS#8).
    pub key: PathBuf,
}

impl Config {
    /// Parse a config file's text: every problem its values show, each with its key and line.
    /// `path` is only used in messages. Files the config names are not read (`load_for_serve`).
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, None)
    }

    /// Read and parse a config file (for the management verbs: no file it names is read).
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Config::parse_with(&text, &path.display().to_string(), None)
    }

    /// What `check-config` and `serve` run before anything is created: `load`, and every file
    /// the config names checked the way `serve` will read it, all problems in one report.
    pub fn load_for_serve(path: &std::path::Path) -> Result<Config, ConfigError> {
        Config::load_for_serve_with(path, &no_loader_checks)
    }

    /// `load_for_serve` plus the checks only the crates that load the files can make (a
    /// certificate that does not match its key, a DKIM key that does not parse): the binary
    /// passes the relay's (`outguard_relay::load_checks`).
    pub fn load_for_serve_with(
        path: &std::path::Path,
        loaders: LoaderChecks<'_>,
    ) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Config::parse_with(&text, &path.display().to_string(), Some(loaders))
    }

    fn parse_with(
        text: &str,
        path: &str,
        files: Option<LoaderChecks<'_>>,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: describe_toml_error(text, &e),
        })?;
        let mut p = Problems::default();
        let cfg = problems::deserialize_all(table, &mut p);
        if cfg.is_none() && p.is_empty() {
            p.add("(file)", "cannot be read as a configuration");
        }
        if let Some(cfg) = &cfg {
            cfg.check_values(&mut p);
            if let Some(loaders) = files {
                cfg.check_files(&mut p);
                cfg.check_loaded(&mut p, loaders);
            }
        }
        match cfg {
            Some(cfg) if p.is_empty() => Ok(cfg),
            _ => Err(ConfigError::Invalid {
                path: path.to_string(),
                problems: p.into_sorted(Some(text)),
            }),
        }
    }

    /// The same checks on a configuration in hand (after command-line overrides), files
    /// included: `serve` runs this first, before it creates anything.
    pub fn check_for_serve(&self) -> Result<(), ConfigError> {
        self.check_for_serve_with(&no_loader_checks)
    }

    /// `check_for_serve` plus the loaders' checks (see [`Config::load_for_serve_with`]).
    pub fn check_for_serve_with(&self, loaders: LoaderChecks<'_>) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        self.check_values(&mut p);
        self.check_files(&mut p);
        self.check_loaded(&mut p, loaders);
        if p.is_empty() {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            path: "configuration".into(),
            problems: p.into_sorted(None),
        })
    }

    /// Valid but worth saying: `check-config` prints these, `serve` logs them once at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.srs.is_none() {
            out.push(
                "[srs] is not configured: mail forwarded through connectors leaves from the relay \
                 pool with its foreign envelope sender unchanged (no SRS; SPF fails at the \
                 receiver and its bounces cannot come back)"
                    .to_string(),
            );
        }
        out
    }

    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }

    pub fn store_url(&self) -> String {
        self.store.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("outguard.db").display()
            )
        })
    }

    pub fn node_name(&self) -> String {
        self.server
            .node
            .clone()
            .unwrap_or_else(|| self.server.hostname.clone())
    }
}

/// Checks a crate that loads the config's files makes: `(key, what is wrong)` for each problem.
pub type LoaderChecks<'a> = &'a dyn Fn(&Config) -> Vec<(String, String)>;

fn no_loader_checks(_: &Config) -> Vec<(String, String)> {
    Vec::new()
}

impl Config {
    /// The loaders' problems, for keys the file checks found nothing wrong with (a missing
    /// key file is told once, as missing).
    fn check_loaded(&self, p: &mut Problems, loaders: LoaderChecks<'_>) {
        for (key, message) in loaders(self) {
            if !p.has(&key) {
                p.add(key, message);
            }
        }
    }
}

fn read(path: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod problem_tests;
#[cfg(test)]
mod tests;
