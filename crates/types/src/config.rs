//! The configuration file (`outguard.toml`, SPEC §6, every key documented in
//! `outguard.example.toml`). Parsed with `deny_unknown_fields` so a misspelt key is refused with
//! its name and line; human values ("10m", "35MB") parse into types here, before anything binds.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::policy::PolicySettings;

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
    pub notifications: NotificationsConfig,
    pub policy: PolicyTable,
    pub spam: SpamConfig,
    pub webhooks: Vec<WebhookConfig>,
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
            notifications: NotificationsConfig::default(),
            policy: PolicyTable::default(),
            spam: SpamConfig::default(),
            webhooks: Vec::new(),
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
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_recipients_per_message: 500,
            messages_per_minute: 30,
            max_message_size: 35 * 1000 * 1000,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// `IP:PORT` of the resolver to ask (tests run their own); system resolver when absent.
    pub resolver: Option<SocketAddr>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FblConfig {
    /// Recipient domains the `fbl` listener accepts reports for.
    pub domains: Vec<String>,
    /// Window complaint and bounce rates are measured over (default 24h).
    #[serde(with = "human_duration")]
    pub window: Duration,
    /// Complaint rate (complaints / delivered recipients) that raises `complaint_rate_exceeded`.
    pub complaint_alert_rate: f64,
    /// Complaint rate that also restricts the account (the policy's spam action).
    pub complaint_restrict_rate: f64,
    /// Fewest delivered recipients in the window before any rate is judged.
    pub min_messages: u64,
    /// Hard-bounce rate (5xx recipients / delivered recipients) that alerts and restricts.
    pub bounce_rate: f64,
    /// Whether a bounce rate over `bounce_rate` restricts (else it only alerts).
    pub bounce_restrict: bool,
}

impl Default for FblConfig {
    fn default() -> Self {
        FblConfig {
            domains: Vec::new(),
            window: Duration::from_secs(24 * 3600),
            complaint_alert_rate: 0.001,
            complaint_restrict_rate: 0.003,
            min_messages: 1000,
            bounce_rate: 0.10,
            bounce_restrict: true,
        }
    }
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpamConfig {
    /// Score at or above which a message is `suspicious` (None = the model's default).
    pub suspicious_score: Option<f64>,
    /// Score at or above which a message is `spam`.
    pub spam_score: Option<f64>,
    /// Path of a model file to use instead of the shipped one.
    pub model: Option<PathBuf>,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            suspicious_score: None,
            spam_score: None,
            model: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: String,
    /// Alert kinds to send; empty = all.
    #[serde(default)]
    pub kinds: Vec<String>,
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
        if let (Some(s), Some(p)) = (self.spam.suspicious_score, self.spam.spam_score) {
            if s > p {
                return Err(bad(
                    "spam.suspicious_score",
                    "must not exceed spam.spam_score".into(),
                ));
            }
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
        Ok(())
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

/// Where `key` (`a.b`, `a[i].b`, `a.b[i].c`) is set in `text`: the line of its `key =` in the
/// right table (the `i`-th `[[…]]` of an array of tables), else the table's header line. `None`
/// when the key is not written in that form (an inline table, a default).
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    let (table, index) = match table.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((t, i)) => (t, i.parse::<usize>().ok()),
        None => (table, None),
    };
    let mut seen = 0usize;
    let mut in_target = table.is_empty();
    let mut header_line = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|h| h.split_once("]]")) {
            let current = h.0.trim();
            in_target = current == table && index == Some(seen);
            if current == table {
                seen += 1;
            }
        } else if let Some(h) = t.strip_prefix('[').and_then(|h| h.split_once(']')) {
            in_target = h.0.trim() == table && index.is_none();
        } else if in_target
            && let Some(rest) = t.strip_prefix(leaf)
            && rest.trim_start().starts_with('=')
        {
            return Some(n + 1);
        }
        if in_target && header_line.is_none() && !table.is_empty() {
            header_line = Some(n + 1);
        }
    }
    header_line
}

/// An `Invalid` error with the line of its key in `text`, when it can be found.
fn with_line(text: &str, e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Invalid { path, key, message } => {
            let message = match key_line(text, &key) {
                Some(n) => format!("line {n}: {message}"),
                None => message,
            };
            ConfigError::Invalid { path, key, message }
        }
        other => other,
    }
}

/// One DNSBL answer code or range as written in `[[dnsbl.zones]]` (`"127.0.0.2"`,
/// `"127.0.0.4-127.0.0.7"`): both ends IPv4 in 127.0.0.0/8 (RFC 5782 §2.1), low end first.
pub fn dnsbl_code_range(s: &str) -> Result<(std::net::Ipv4Addr, std::net::Ipv4Addr), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let ip = |x: &str| {
        x.trim()
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .filter(|ip| ip.octets()[0] == 127)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not an IPv4 address in 127.0.0.0/8 \
                     (expected 127.x.y.z or 127.x.y.z-127.x.y.z)"
                )
            })
    };
    let (from, to) = (ip(a)?, ip(b)?);
    if from > to {
        return Err(format!("`{s}`: the range ends before it starts"));
    }
    Ok((from, to))
}

/// A DNS name as a zone may be called: 1–253 characters, labels of 1–63 letters, digits, `-`
/// or `_` not starting or ending with `-`, at least two labels (one trailing dot allowed).
pub fn valid_dns_name(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = n.split('.').collect();
    !n.is_empty()
        && n.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
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

/// toml's message already names the key ("unknown field `x`, expected one of …") and the span;
/// add the line number so the operator can find it.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

/// Parse "35MB", "10MiB", "512KB", "1000".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 35MB"))?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" => 1000,
        "KIB" => 1024,
        "MB" | "M" => 1000 * 1000,
        "MIB" => 1024 * 1024,
        "GB" | "G" => 1000 * 1000 * 1000,
        "GIB" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown size unit `{other}` in `{s}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like 10m: {e}"))
}

mod human_duration {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

mod human_durations {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<String> = d
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        v.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

mod human_size {
    use super::*;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    pub fn serialize<S: serde::Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*n)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => parse_size(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.limits.max_recipients_per_message, 500);
        assert_eq!(c.listeners.submission.unwrap().port(), 2587);
        assert_eq!(c.pools.len(), 3);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = Config::parse(
            "[limits]\nmax_recipients_per_message = 5\nbogus = 1\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bogus") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e =
            Config::parse("[limits]\nmax_recipients_per_message = 5000\n", "t.toml").unwrap_err();
        assert!(
            e.to_string().contains("limits.max_recipients_per_message"),
            "{e}"
        );
        let e =
            Config::parse("[delivery]\nretry_schedule = [\"5 parsecs\"]\n", "t.toml").unwrap_err();
        assert!(
            e.to_string().contains("retry_schedule") || e.to_string().contains("duration"),
            "{e}"
        );
        let e = Config::parse("[delivery]\nretry_schedule = [\"10m\", \"5m\"]\n", "t.toml")
            .unwrap_err();
        assert!(
            e.to_string().contains("delivery.retry_schedule")
                && e.to_string().contains("10m then 5m"),
            "{e}"
        );
    }

    #[test]
    fn dnsbl_zone_codes_are_checked_with_key_and_line() {
        let zone = |listed: &str, errors: &str| {
            format!(
                "[server]\nhostname = \"x\"\n\n[dnsbl]\ninterval = \"5m\"\n\n\
                 [[dnsbl.zones]]\nname = \"ok.test\"\n\n\
                 [[dnsbl.zones]]\nname = \"bl.test\"\nlisted = [{listed}]\nerrors = [{errors}]\n"
            )
        };
        let good = Config::parse(
            &zone(
                r#""127.0.0.2", "127.0.0.4-127.0.0.7""#,
                r#""127.255.255.254""#,
            ),
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(good.dnsbl.zones.len(), 2);
        let cases = [
            (
                zone(r#""10.0.0.2""#, ""),
                "dnsbl.zones[1].listed",
                "line 12",
                "10.0.0.2",
            ),
            (
                zone(r#""127.0.0.9-127.0.0.2""#, ""),
                "dnsbl.zones[1].listed",
                "line 12",
                "ends before",
            ),
            (
                zone(r#""127.0.0.2""#, r#""nope""#),
                "dnsbl.zones[1].errors",
                "line 13",
                "127.0.0.0/8",
            ),
            (
                zone(r#""127.0.0.2-127.0.0.11""#, r#""127.0.0.4""#),
                "dnsbl.zones[1].errors",
                "line 13",
                "also a listing code",
            ),
            (
                zone(r#""::1""#, ""),
                "dnsbl.zones[1].listed",
                "line 12",
                "::1",
            ),
        ];
        for (text, key, line, what) in cases {
            let e = Config::parse(&text, "t.toml").unwrap_err();
            let ConfigError::Invalid { key: k, .. } = &e else {
                panic!("{e:?}");
            };
            assert_eq!(k, key, "{e}");
            let e = e.to_string();
            assert!(
                e.contains(line) && e.contains(what) && e.contains("bl.test"),
                "{e}"
            );
        }
        for (text, key, line) in [
            (
                "[dnsbl]\ninterval = \"500ms\"\n",
                "dnsbl.interval",
                "line 2",
            ),
            (
                "[dnsbl]\ninterval = \"2days\"\n",
                "dnsbl.interval",
                "line 2",
            ),
            (
                "\n[dnsbl]\nclear_checks = 0\n",
                "dnsbl.clear_checks",
                "line 3",
            ),
            (
                "[dnsbl]\nclear_checks = 1000\n",
                "dnsbl.clear_checks",
                "line 2",
            ),
            (
                "[[dnsbl.zones]]\nname = \"bad_zone..test\"\n",
                "dnsbl.zones[0].name",
                "line 2",
            ),
            (
                "[[dnsbl.zones]]\nname = \"nodot\"\n",
                "dnsbl.zones[0].name",
                "line 2",
            ),
            (
                "[[dnsbl.zones]]\nname = \"-x.test\"\n",
                "dnsbl.zones[0].name",
                "line 2",
            ),
            (
                "[[dnsbl.zones]]\nname = \"a.test\"\n[[dnsbl.zones]]\nname = \"A.test.\"\n",
                "dnsbl.zones[1].name",
                "line 4",
            ),
        ] {
            let e = Config::parse(text, "t.toml").unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(key) && msg.contains(line), "{text}: {msg}");
        }
        assert!(valid_dns_name("zen.spamhaus.org.") && valid_dns_name("b.barracudacentral.org"));
        assert!(!valid_dns_name("") && !valid_dns_name("a..b") && !valid_dns_name("a b.test"));
    }

    #[test]
    fn key_lines() {
        let text = "store = \"sqlite:x\"\n[limits]\nmessages_per_minute = 0\n[[pools]]\nname = \"a\"\n[[pools]]\nname = \"b\"\nsource_ips = []\n";
        assert_eq!(key_line(text, "store"), Some(1));
        assert_eq!(key_line(text, "limits.messages_per_minute"), Some(3));
        assert_eq!(key_line(text, "pools[1].source_ips"), Some(8));
        assert_eq!(
            key_line(text, "pools[0].source_ips"),
            Some(4),
            "the table's header"
        );
        assert_eq!(key_line(text, "dnsbl.interval"), None);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("35MB").unwrap(), 35_000_000);
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert!(parse_size("12 parsecs").is_err());
        let c = Config::parse(
            "[limits]\nmax_message_size = \"10MiB\"\n[delivery]\nretry_schedule=[\"1s\",\"2s\"]\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.limits.max_message_size, 10 * 1024 * 1024);
        assert_eq!(
            c.delivery.retry_schedule,
            vec![Duration::from_secs(1), Duration::from_secs(2)]
        );
    }

    /// Every leaf key of a serialized config (table paths dropped): what the example must name.
    fn leaf_keys(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::Object(_) => leaf_keys(v, out),
                        serde_json::Value::Array(a) if a.iter().any(|x| x.is_object()) => {
                            a.iter().for_each(|x| leaf_keys(x, out))
                        }
                        _ => out.push(k.clone()),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| leaf_keys(x, out)),
            _ => {}
        }
    }

    /// `outguard.example.toml` parses, its live values are exactly the embedded default, and it
    /// names every key the code knows (set or commented out), all 14 policy keys included with
    /// valid example values — so the documented file cannot drift from the code.
    #[test]
    fn the_example_config_parses_is_the_default_and_documents_every_key() {
        let text = include_str!("../../../outguard.example.toml");
        let c = Config::parse(text, "outguard.example.toml").unwrap_or_else(|e| panic!("{e}"));
        let json = |c: &Config| serde_json::to_value(c).expect("serialize");
        assert_eq!(
            json(&c),
            json(&Config::default()),
            "the example's live values are the embedded defaults"
        );
        let named = |key: &str| {
            text.lines().any(|l| {
                l.trim_start_matches(|ch: char| ch == '#' || ch == ' ')
                    .starts_with(&format!("{key} ="))
            })
        };
        let mut keys = Vec::new();
        leaf_keys(&json(&Config::default()), &mut keys);
        // Arrays of tables that are empty by default: their keys come from their own types.
        keys.extend(
            [
                "domains", "next_hop", "name", "listed", "errors", "url", "secret", "kinds",
                "domain", "selector", "key",
            ]
            .map(String::from),
        );
        keys.extend(crate::policy::POLICY_KEYS.iter().map(|k| k.to_string()));
        // Empty arrays of tables (`routes`, `dkim`, …) are documented by their `[[…]]` header.
        let table_array =
            |key: &str| text.contains(&format!("[[{key}]]")) || text.contains(&format!(".{key}]]"));
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| !named(k) && !table_array(k))
            .collect();
        assert!(
            missing.is_empty(),
            "outguard.example.toml does not document {missing:?}"
        );
        for table in [
            "[server]",
            "[listeners]",
            "[tls]",
            "[limits]",
            "[dns]",
            "[delivery]",
            "[[pools]]",
            "[[routes]]",
            "[[dkim]]",
            "[dnsbl]",
            "[[dnsbl.zones]]",
            "[fbl]",
            "[notifications]",
            "[policy.default]",
            "[spam]",
            "[[webhooks]]",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches(|ch: char| ch == '#' || ch == ' ') == table),
                "no {table} in the example"
            );
        }
        // The commented policy examples, uncommented, are valid and set all 14 keys.
        let start = text.find("[policy.default]").expect("policy table");
        let block: String = text[start..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .filter_map(|l| l.strip_prefix("# ").filter(|r| r.contains(" = ")))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::parse(&format!("[policy.default]\n{block}"), "policy block")
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        let set = serde_json::to_value(&c.policy.default).expect("serialize");
        assert_eq!(
            set.as_object().map(|m| m.len()),
            Some(crate::policy::POLICY_KEYS.len()),
            "{set}"
        );
    }
}
