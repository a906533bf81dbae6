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
    /// Source IPs or CIDRs (`"192.0.2.7"`, `"198.51.100.0/24"`) whose reports are believed
    /// (SPEC §9): only these, a `trusted_dkim_domains` signature or an operator's `POST
    /// /api/v1/fbl` count toward rates and train the spam overlay.
    pub trusted_reporters: Vec<String>,
    /// Domains whose valid DKIM signature (`d=`, exact match) makes a report believed.
    pub trusted_dkim_domains: Vec<String>,
    /// Largest report taken (fbl listener `552 5.3.4`, API `413`). Default 1MB.
    #[serde(with = "human_size")]
    pub max_report_size: u64,
    /// Reports taken per source IP per minute on the fbl listener (`451 4.7.0` beyond).
    pub reports_per_minute_per_ip: u32,
}

impl FblConfig {
    /// `trusted_reporters` as networks (a bare address is a /32 or /128); the entry that
    /// failed to parse on error.
    pub fn trusted_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_reporters
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<ipnet::IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| e.to_string())
            })
            .collect()
    }
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
            trusted_reporters: Vec::new(),
            trusted_dkim_domains: Vec::new(),
            max_report_size: 1000 * 1000,
            reports_per_minute_per_ip: 60,
        }
    }
}

/// `[srs]`: forwarded mail leaves with an `SRS0=…@domain` envelope sender; bounces to such
/// addresses arrive on the `fbl` listener and are reversed to the original sender.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsConfig {
    /// Our SRS domain: its MX must point at the `fbl` listener, its SPF at the `relay` pool.
    pub domain: String,
    /// HMAC key of the address hashes (at least 16 bytes). Changing it invalidates addresses
    /// still in flight: their bounces are refused.
    pub secret: String,
    /// How long a rewritten address is honoured (whole days, 1d–1000d; default 21d).
    #[serde(with = "human_duration", default = "SrsConfig::default_max_age")]
    pub max_age: Duration,
}

impl std::fmt::Debug for SrsConfig {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrsConfig")
            .field("domain", &self.domain)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl SrsConfig {
    pub const MIN_SECRET_BYTES: usize = 16;
    /// Longest `max_age`: SRS timestamps count days mod 1024.
    pub const MAX_AGE_DAYS: u64 = 1000;

    fn default_max_age() -> Duration {
        Duration::from_secs(21 * 86_400)
    }

    pub fn max_age_days(&self) -> u32 {
        (self.max_age.as_secs() / 86_400) as u32
    }

    /// Returns the offending key (`srs.secret`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !valid_dns_name(&self.domain) {
            return Err((
                "srs.domain".into(),
                format!("`{}` is not a valid DNS name", self.domain),
            ));
        }
        if self.secret.len() < Self::MIN_SECRET_BYTES {
            return Err((
                "srs.secret".into(),
                format!(
                    "must be at least {} bytes (it is {})",
                    Self::MIN_SECRET_BYTES,
                    self.secret.len()
                ),
            ));
        }
        let days = self.max_age.as_secs() / 86_400;
        if !self.max_age.as_secs().is_multiple_of(86_400)
            || !(1..=Self::MAX_AGE_DAYS).contains(&days)
        {
            return Err((
                "srs.max_age".into(),
                format!(
                    "`{}` must be whole days between 1d and {}d",
                    humantime::format_duration(self.max_age),
                    Self::MAX_AGE_DAYS
                ),
            ));
        }
        Ok(())
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

/// `[webhooks]`: the operator's own hooks (`[[webhooks.hooks]]`, not restricted) and the rules
/// for the tenants' API subscriptions (SPEC §9). The older form, a bare `[[webhooks]]` array of
/// hooks, still reads as `hooks` (a file can use one form or the other: TOML does not allow a
/// table and an array of tables under one name).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WebhooksConfig {
    /// CIDRs that API subscriptions may reach although they are not public (internal
    /// receivers); cloud-metadata addresses stay refused unless listed as a single address.
    pub allow_private: Vec<ipnet::IpNet>,
    /// PEM file of extra root CAs trusted for `https://` hooks, beside the platform's roots.
    pub extra_roots: Option<PathBuf>,
    pub hooks: Vec<WebhookConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct WebhooksTable {
    #[serde(deserialize_with = "cidrs")]
    allow_private: Vec<ipnet::IpNet>,
    extra_roots: Option<PathBuf>,
    hooks: Vec<WebhookConfig>,
}

/// `["10.0.0.0/8", …]`; a bad entry is named with the key, since the bare parser's message
/// ("invalid IP address syntax") does not say which key or what form is expected.
fn cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "allow_private: `{s}` is not a CIDR (like \"10.0.0.0/8\" or \"fd00::/8\")"
                ))
            })
        })
        .collect()
}

impl<'de> Deserialize<'de> for WebhooksConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = WebhooksConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [webhooks] table (or the older [[webhooks]] array of hooks)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                let hooks = Vec::<WebhookConfig>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(a),
                )?;
                Ok(WebhooksConfig {
                    hooks,
                    ..WebhooksConfig::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                a: A,
            ) -> Result<Self::Value, A::Error> {
                let t =
                    WebhooksTable::deserialize(serde::de::value::MapAccessDeserializer::new(a))?;
                Ok(WebhooksConfig {
                    allow_private: t.allow_private,
                    extra_roots: t.extra_roots,
                    hooks: t.hooks,
                })
            }
        }
        d.deserialize_any(Either)
    }
}

impl WebhooksConfig {
    /// Every hook's URL parses, and `extra_roots` is a readable PEM file with a certificate.
    /// Returns the offending key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, h) in self.hooks.iter().enumerate() {
            crate::webhook_url::WebhookUrl::parse(&h.url)
                .map_err(|m| (format!("webhooks.hooks[{i}].url"), m))?;
        }
        if let Some(path) = &self.extra_roots {
            let key = "webhooks.extra_roots".to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| (key.clone(), format!("cannot read {}: {e}", path.display())))?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                return Err((key, format!("{} holds no PEM certificate", path.display())));
            }
        }
        Ok(())
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

    /// `[webhooks]` with `[[webhooks.hooks]]`, and the older bare `[[webhooks]]` array, both
    /// read; mistakes in either name the key.
    #[test]
    fn webhooks_table_and_the_older_array() {
        let c = Config::parse(
            "[webhooks]\nallow_private = [\"10.20.0.0/16\", \"fd00::/8\"]\n\n\
             [[webhooks.hooks]]\nurl = \"https://h.example/x\"\nsecret = \"s\"\n",
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.webhooks.allow_private.len(), 2);
        assert_eq!(c.webhooks.hooks[0].url, "https://h.example/x");
        let old = Config::parse(
            "[[webhooks]]\nurl = \"http://a.example/\"\nsecret = \"s\"\n\
             [[webhooks]]\nurl = \"http://b.example/\"\nsecret = \"t\"\nkinds = [\"ip_listed\"]\n",
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.webhooks.hooks.len(), 2);
        assert_eq!(old.webhooks.hooks[1].kinds, vec!["ip_listed"]);
        assert!(old.webhooks.allow_private.is_empty());
        for (text, want) in [
            (
                "[webhooks]\nallow_private = [\"10.0.0.0/33\"]\n",
                "allow_private",
            ),
            ("[webhooks]\nallow_privat = []\n", "allow_privat"),
            (
                "[[webhooks]]\nurl = \"http://a.example/\"\nsecret = \"s\"\nkind = []\n",
                "kind",
            ),
            (
                "[webhooks]\n[[webhooks.hooks]]\nurl = \"ftp://a.example/\"\nsecret = \"s\"\n",
                "webhooks.hooks[0].url",
            ),
            (
                "[[webhooks]]\nurl = \"http://u@a.example/\"\nsecret = \"s\"\n",
                "user info",
            ),
            (
                "[webhooks]\nextra_roots = \"/nonexistent/ca.pem\"\n",
                "webhooks.extra_roots",
            ),
        ] {
            let e = Config::parse(text, "t.toml").expect_err(text).to_string();
            assert!(e.contains(want), "{text}: `{e}` lacks `{want}`");
        }
        let dir = std::env::temp_dir().join(format!("og-roots-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").expect("write");
        let e = Config::parse(
            &format!("[webhooks]\nextra_roots = \"{}\"\n", dir.display()),
            "t.toml",
        )
        .expect_err("no certificate")
        .to_string();
        let _ = std::fs::remove_file(&dir);
        assert!(
            e.contains("extra_roots") && e.contains("no PEM certificate"),
            "{e}"
        );
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
    fn guessing_and_hogging_bounds_are_checked_with_their_key() {
        let c = Config::parse("", "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let l = &c.listeners;
        assert_eq!(
            (l.max_auth_failures, l.max_auth_failures_per_account),
            (10, 30)
        );
        assert_eq!(l.auth_lockout, Duration::from_secs(900));
        assert_eq!(l.max_connections_per_ip, 20);
        assert_eq!(l.http_header_timeout, Duration::from_secs(10));
        for (line, key) in [
            ("max_auth_failures = 0", "listeners.max_auth_failures"),
            (
                "max_auth_failures_per_account = 0",
                "listeners.max_auth_failures_per_account",
            ),
            (
                "max_connections_per_ip = 0",
                "listeners.max_connections_per_ip",
            ),
            ("http_max_connections = 0", "listeners.http_max_connections"),
            (
                "http_max_connections_per_ip = 0",
                "listeners.http_max_connections_per_ip",
            ),
            ("auth_lockout = \"0s\"", "listeners.auth_lockout"),
            (
                "auth_failure_window = \"30days\"",
                "listeners.auth_failure_window",
            ),
            (
                "http_header_timeout = \"0s\"",
                "listeners.http_header_timeout",
            ),
        ] {
            let e = Config::parse(&format!("[listeners]\n{line}\n"), "t.toml").unwrap_err();
            let ConfigError::Invalid { key: k, .. } = &e else {
                panic!("{line}: {e:?}");
            };
            assert_eq!(k, key, "{e}");
            assert!(e.to_string().contains("line 2"), "{e}");
        }
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
                "domain", "selector", "key", "max_age",
            ]
            .map(String::from),
        );
        keys.extend(crate::policy::POLICY_KEYS.iter().map(|k| k.to_string()));
        // Empty arrays of tables (`routes`, `dkim`, …) are documented by their `[[…]]` header.
        let table_array =
            |key: &str| text.contains(&format!("[[{key}]]")) || text.contains(&format!(".{key}]]"));
        // Optional tables absent by default (`srs`) are documented by their `# [key]` header.
        let table = |key: &str| {
            text.lines()
                .any(|l| l.trim_start_matches(['#', ' ']) == format!("[{key}]"))
        };
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| !named(k) && !table_array(k) && !table(k))
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
            "[srs]",
            "[notifications]",
            "[policy.default]",
            "[spam]",
            "[webhooks]",
            "[[webhooks.hooks]]",
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

    #[test]
    fn srs_is_checked_with_key_and_line() {
        let srs = |body: &str| format!("[server]\nhostname = \"x\"\n\n[srs]\n{body}");
        let ok = Config::parse(
            &srs("domain = \"srs.x.example\"\nsecret = \"0123456789abcdef\"\n"),
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let got = ok.srs.as_ref().expect("srs");
        assert_eq!(
            (got.domain.as_str(), got.max_age_days()),
            ("srs.x.example", 21)
        );
        assert!(!format!("{got:?}").contains("0123456789abcdef"));
        assert!(ok.warnings().is_empty());
        assert!(Config::default().warnings()[0].contains("[srs] is not configured"));
        let cases = [
            (
                "domain = \"srs.x.example\"\nsecret = \"short\"\n",
                "srs.secret",
                "line 6",
                "at least 16 bytes",
            ),
            (
                "domain = \"not a domain\"\nsecret = \"0123456789abcdef\"\n",
                "srs.domain",
                "line 5",
                "not a valid DNS name",
            ),
            (
                "domain = \"srs.x.example\"\nsecret = \"0123456789abcdef\"\nmax_age = \"2000d\"\n",
                "srs.max_age",
                "line 7",
                "between 1d and 1000d",
            ),
            (
                "domain = \"srs.x.example\"\nsecret = \"0123456789abcdef\"\nmax_age = \"36h\"\n",
                "srs.max_age",
                "line 7",
                "whole days",
            ),
        ];
        for (body, key, line, what) in cases {
            let e = Config::parse(&srs(body), "t.toml").unwrap_err();
            let ConfigError::Invalid { key: k, .. } = &e else {
                panic!("{e:?}");
            };
            assert_eq!(k, key, "{e}");
            let e = e.to_string();
            assert!(e.contains(line) && e.contains(what), "{e}");
        }
        // The example's commented `[srs]` keys, uncommented, are valid.
        let text = include_str!("../../../outguard.example.toml");
        let start = text.find("# [srs]").expect("[srs] in the example");
        let keys: String = text[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                ["domain =", "secret =", "max_age ="]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let ex = Config::parse(&srs(&keys), "example").unwrap_or_else(|e| panic!("{e}\n{keys}"));
        assert_eq!(ex.srs.map(|s| s.max_age_days()), Some(21));
        let e = Config::parse(&srs("domain = \"srs.x.example\"\n"), "t").unwrap_err();
        assert!(e.to_string().contains("secret"), "{e}");
    }

    /// SPEC §9 `[fbl]` keys: defaults, accepted forms, and refusals naming the key.
    #[test]
    fn fbl_trust_keys() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.fbl.max_report_size, 1_000_000);
        assert_eq!(c.fbl.reports_per_minute_per_ip, 60);
        assert!(c.fbl.trusted_reporters.is_empty() && c.fbl.trusted_dkim_domains.is_empty());
        let c = Config::parse(
            "[fbl]\ntrusted_reporters = [\"192.0.2.7\", \"198.51.100.9/24\", \"2001:db8::/32\"]\n\
             trusted_dkim_domains = [\"fbl.isp.example\"]\nmax_report_size = \"2MB\"\n\
             reports_per_minute_per_ip = 5\n",
            "t.toml",
        )
        .unwrap();
        let nets: Vec<String> = c
            .fbl
            .trusted_nets()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["192.0.2.7/32", "198.51.100.0/24", "2001:db8::/32"]);
        assert_eq!(c.fbl.max_report_size, 2_000_000);
        for (text, key) in [
            (
                "trusted_reporters = [\"not-an-ip\"]",
                "fbl.trusted_reporters",
            ),
            (
                "trusted_reporters = [\"10.0.0.0/33\"]",
                "fbl.trusted_reporters",
            ),
            ("trusted_dkim_domains = [\"\"]", "fbl.trusted_dkim_domains"),
            (
                "trusted_dkim_domains = [\"a@b.example\"]",
                "fbl.trusted_dkim_domains",
            ),
            ("max_report_size = \"10\"", "fbl.max_report_size"),
            ("max_report_size = \"1GB\"", "fbl.max_report_size"),
            (
                "reports_per_minute_per_ip = 0",
                "fbl.reports_per_minute_per_ip",
            ),
        ] {
            let e = Config::parse(&format!("[fbl]\n{text}\n"), "t.toml").unwrap_err();
            let ConfigError::Invalid { key: k, .. } = &e else {
                panic!("{text}: {e:?}");
            };
            assert_eq!(k, key, "{e}");
        }
    }
}
