//! The configuration file (`outguard.toml`, SPEC §6, every key documented in
//! `outguard.example.toml`). Parsed with `deny_unknown_fields` so a misspelt key is refused with
//! its name and line; human values ("10m", "35MB") parse into types here, before anything binds.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::PolicySettings;

mod trust;
mod values;

pub use trust::{FblConfig, SrsConfig, WebhookConfig, WebhooksConfig};
use values::{describe_toml_error, human_duration, human_durations, human_size, with_line};
pub use values::{dnsbl_code_range, key_line, parse_duration, parse_size, valid_dns_name};

/// A refused configuration: the key (dotted path) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
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
    pub pools: Vec<PoolConfig>,
    pub routes: Vec<RouteConfig>,
    pub dnsbl: DnsblConfig,
    pub fbl: FblConfig,
    /// Sender Rewriting Scheme for forwarded mail (SPEC §2.5, §9); absent: not rewritten.
    pub srs: Option<SrsConfig>,
    pub notifications: NotificationsConfig,
    pub policy: PolicyTable,
    pub spam: SpamConfig,
    pub webhooks: WebhooksConfig,
    pub dkim: Vec<DkimConfig>,
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
            pools: default_pools(),
            routes: Vec::new(),
            dnsbl: DnsblConfig::default(),
            fbl: FblConfig::default(),
            srs: None,
            notifications: NotificationsConfig::default(),
            policy: PolicyTable::default(),
            spam: SpamConfig::default(),
            webhooks: WebhooksConfig::default(),
            dkim: Vec::new(),
        }
    }
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
    pub submission: Option<SocketAddr>,
    pub submissions: Option<SocketAddr>,
    pub connector: Option<SocketAddr>,
    pub fbl: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
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

impl ListenersConfig {
    /// SPEC §9 "Guessing and hogging": every bound must be a bound (no zero that would lock
    /// everyone out or let nobody in).
    fn validate_guards(&self) -> Result<(), (&'static str, String)> {
        let at_least_one = [
            (
                "listeners.max_auth_failures",
                self.max_auth_failures as usize,
            ),
            (
                "listeners.max_auth_failures_per_account",
                self.max_auth_failures_per_account as usize,
            ),
            (
                "listeners.max_connections_per_ip",
                self.max_connections_per_ip,
            ),
            ("listeners.http_max_connections", self.http_max_connections),
            (
                "listeners.http_max_connections_per_ip",
                self.http_max_connections_per_ip,
            ),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err((key, "must be at least 1".into()));
        }
        for (key, d) in [
            ("listeners.auth_failure_window", self.auth_failure_window),
            ("listeners.auth_lockout", self.auth_lockout),
            ("listeners.http_header_timeout", self.http_header_timeout),
        ] {
            if d.is_zero() {
                return Err((key, "must be above zero".into()));
            }
            if d > Duration::from_secs(7 * 86_400) {
                return Err((key, "must be at most 7 days".into()));
            }
        }
        Ok(())
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
    pub resolver: Option<SocketAddr>,
    /// How often `serve` looks for the `outguard-verify=<token>` TXT record of every pending
    /// domain (SPEC §9).
    #[serde(with = "human_duration")]
    pub domain_verify_interval: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            resolver: None,
            domain_verify_interval: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Destination port (25; tests override).
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
    /// Parse a config file's text. `path` is only used in messages.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: describe_toml_error(text, &e),
        })?;
        cfg.validate(path).map_err(|e| with_line(text, e))?;
        Ok(cfg)
    }

    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Range and consistency checks serde cannot express.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_string(),
            key: key.to_string(),
            message,
        };
        let n = self.limits.max_recipients_per_message;
        if !(1..=1000).contains(&n) {
            return Err(bad(
                "limits.max_recipients_per_message",
                format!("{n} is outside 1–1000"),
            ));
        }
        if self.limits.messages_per_minute == 0 {
            return Err(bad(
                "limits.messages_per_minute",
                "must be at least 1".into(),
            ));
        }
        if self.limits.unregistered_domain_messages_per_hour == 0 {
            return Err(bad(
                "limits.unregistered_domain_messages_per_hour",
                "must be at least 1".into(),
            ));
        }
        if self.dns.domain_verify_interval < Duration::from_secs(1) {
            return Err(bad(
                "dns.domain_verify_interval",
                "must be at least 1s".into(),
            ));
        }
        if self.limits.max_message_size < 1024 {
            return Err(bad(
                "limits.max_message_size",
                "must be at least 1KB".into(),
            ));
        }
        if self.delivery.retry_schedule.is_empty() {
            return Err(bad(
                "delivery.retry_schedule",
                "needs at least one duration".into(),
            ));
        }
        if self.delivery.retry_schedule.iter().any(Duration::is_zero) {
            return Err(bad(
                "delivery.retry_schedule",
                "every wait must be above zero".into(),
            ));
        }
        if let Some(w) = self
            .delivery
            .retry_schedule
            .windows(2)
            .find(|w| w[1] < w[0])
        {
            return Err(bad(
                "delivery.retry_schedule",
                format!(
                    "waits must never shrink ({} then {})",
                    humantime::format_duration(w[0]),
                    humantime::format_duration(w[1])
                ),
            ));
        }
        if self.listeners.max_connections == 0 {
            return Err(bad(
                "listeners.max_connections",
                "must be at least 1".into(),
            ));
        }
        self.listeners
            .validate_guards()
            .map_err(|(k, m)| bad(k, m))?;
        for (i, p) in self.pools.iter().enumerate() {
            if p.source_ips.is_empty() {
                return Err(bad(
                    &format!("pools[{i}].source_ips"),
                    "needs at least one address".into(),
                ));
            }
        }
        for required in ["regular", "high-risk", "relay"] {
            if !self.pools.iter().any(|p| p.name == required) {
                return Err(bad("pools", format!("pool `{required}` is missing")));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.domains.is_empty() {
                return Err(bad(
                    &format!("routes[{i}].domains"),
                    "needs at least one domain".into(),
                ));
            }
            if !r.next_hop.contains(':') {
                return Err(bad(
                    &format!("routes[{i}].next_hop"),
                    format!("`{}` is not host:port", r.next_hop),
                ));
            }
        }
        if let (Some(s), Some(p)) = (self.spam.suspicious_score, self.spam.spam_score)
            && s > p
        {
            return Err(bad(
                "spam.suspicious_score",
                "must not exceed spam.spam_score".into(),
            ));
        }
        for (key, url) in [("store", &self.store), ("counters", &self.counters)] {
            if let Some(u) = url {
                let ok = match key {
                    "store" => {
                        u.starts_with("sqlite:")
                            || u.starts_with("postgres://")
                            || u.starts_with("postgresql://")
                    }
                    _ => u == "memory" || u.starts_with("redis://"),
                };
                if !ok {
                    return Err(bad(key, format!("unsupported URL `{u}`")));
                }
            }
        }
        self.policy
            .default
            .validate()
            .map_err(|m| bad("policy.default", m))?;
        self.policy
            .ceilings
            .validate()
            .map_err(|(key, m)| bad(&key, m))?;
        self.dnsbl.validate().map_err(|(key, m)| bad(&key, m))?;
        self.webhooks.validate().map_err(|(key, m)| bad(&key, m))?;
        if let Some(srs) = &self.srs {
            srs.validate().map_err(|(key, m)| bad(&key, m))?;
        }
        self.validate_fbl().map_err(|(key, m)| bad(key, m))?;
        Ok(())
    }

    /// The `[fbl]` trust and cap keys (SPEC §9).
    fn validate_fbl(&self) -> Result<(), (&'static str, String)> {
        let f = &self.fbl;
        f.trusted_nets().map_err(|e| {
            (
                "fbl.trusted_reporters",
                format!("`{e}` is not an IP address or CIDR"),
            )
        })?;
        if let Some(d) = f.trusted_dkim_domains.iter().find(|d| {
            d.is_empty() || !d.contains('.') || d.chars().any(|c| c.is_whitespace() || c == '@')
        }) {
            return Err((
                "fbl.trusted_dkim_domains",
                format!("`{d}` is not a domain name"),
            ));
        }
        if !(1024..=100 * 1000 * 1000).contains(&f.max_report_size) {
            return Err((
                "fbl.max_report_size",
                "must be between 1KB and 100MB".into(),
            ));
        }
        if f.reports_per_minute_per_ip == 0 {
            return Err(("fbl.reports_per_minute_per_ip", "must be at least 1".into()));
        }
        Ok(())
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

impl DnsblConfig {
    /// Shortest and longest `interval`.
    pub const INTERVAL_RANGE: (Duration, Duration) =
        (Duration::from_secs(1), Duration::from_secs(24 * 3600));
    /// Largest `clear_checks`.
    pub const MAX_CLEAR_CHECKS: u32 = 100;

    /// Ranges, zone names, and every code: in 127.0.0.0/8, never both a listing and an error
    /// code of one zone. Returns the offending key (`dnsbl.zones[i].listed`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let (lo, hi) = Self::INTERVAL_RANGE;
        if self.interval < lo || self.interval > hi {
            return Err((
                "dnsbl.interval".into(),
                format!(
                    "`{}` is outside 1s–24h",
                    humantime::format_duration(self.interval)
                ),
            ));
        }
        if !(1..=Self::MAX_CLEAR_CHECKS).contains(&self.clear_checks) {
            return Err((
                "dnsbl.clear_checks".into(),
                format!(
                    "{} is outside 1–{}",
                    self.clear_checks,
                    Self::MAX_CLEAR_CHECKS
                ),
            ));
        }
        let mut names: Vec<String> = Vec::new();
        for (i, z) in self.zones.iter().enumerate() {
            let key = |k: &str| format!("dnsbl.zones[{i}].{k}");
            if !valid_dns_name(&z.name) {
                return Err((key("name"), format!("`{}` is not a valid DNS name", z.name)));
            }
            let name = z.name.trim_end_matches('.').to_ascii_lowercase();
            if names.contains(&name) {
                return Err((key("name"), format!("zone `{name}` is configured twice")));
            }
            let ranges = |k: &str, list: &[String]| {
                list.iter()
                    .map(|c| {
                        dnsbl_code_range(c).map_err(|m| (key(k), format!("zone `{name}`: {m}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let listed = ranges("listed", &z.listed)?;
            let errors = ranges("errors", &z.errors)?;
            for (i, (a, b)) in errors.iter().enumerate() {
                if let Some(j) = listed.iter().position(|(c, d)| a <= d && c <= b) {
                    return Err((
                        key("errors"),
                        format!(
                            "zone `{name}`: error code `{}` is also a listing code (`{}`)",
                            z.errors[i], z.listed[j]
                        ),
                    ));
                }
            }
            names.push(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
