//! Range and consistency checks serde cannot express. Each check adds its problems and goes on,
//! so one run of `check-config` lists everything that is wrong, each with its key.

use std::time::Duration;

use super::problems::Problems;
use super::values::{dnsbl_code_range, valid_dns_name};
use super::{Config, DnsblConfig, Dnssec, ListenersConfig, TlsPolicy};

impl Config {
    /// Everything wrong with this configuration that its values show (no file is read).
    pub(super) fn check_values(&self, p: &mut Problems) {
        self.check_limits(p);
        self.check_delivery(p);
        self.listeners.check(p);
        for (i, c) in self.policy_service.clients.iter().enumerate() {
            if c.parse::<ipnet::IpNet>().is_err() {
                p.add(
                    format!("policy_service.clients[{i}]"),
                    format!("{c:?} is not a CIDR (like \"127.0.0.0/8\")"),
                );
            }
        }
        self.check_pools_and_routes(p);
        self.check_tls_and_dkim(p);
        self.check_notifications(p);
        self.check_stores_and_spam(p);
        for (key, m) in self.policy.default.problems() {
            p.add(format!("policy.default.{key}"), m);
        }
        for (key, m) in self.policy.ceilings.problems() {
            p.add(key, m);
        }
        self.dnsbl.check(p);
        p.check(self.webhooks.validate());
        if let Some(srs) = &self.srs {
            p.check(srs.validate());
        }
        self.check_fbl(p);
        self.retention.check(p);
        self.delivery.adaptive.check(p);
        let pools: Vec<&str> = self.pools.iter().map(|x| x.name.as_str()).collect();
        super::shaping::check_rules(&self.shaping, &pools, p);
        self.suppression.check(p);
        self.trust_ramp.check(p);
        self.bulk.check(p);
        self.login_behaviour.check(p);
        self.provider_deferrals.check(p);
    }

    fn check_limits(&self, p: &mut Problems) {
        let l = &self.limits;
        let n = l.max_recipients_per_message;
        if !(1..=1000).contains(&n) {
            p.add(
                "limits.max_recipients_per_message",
                format!("{n} is outside 1–1000"),
            );
        }
        if l.messages_per_minute == 0 {
            p.add("limits.messages_per_minute", "must be at least 1");
        }
        if l.unregistered_domain_messages_per_hour == 0 {
            p.add(
                "limits.unregistered_domain_messages_per_hour",
                "must be at least 1",
            );
        }
        if l.max_message_size < 1024 {
            p.add("limits.max_message_size", "must be at least 1KB");
        }
        if self.dns.domain_verify_interval < Duration::from_secs(1) {
            p.add("dns.domain_verify_interval", "must be at least 1s");
        }
        if self.dns.dnssec == Dnssec::TrustAd
            && !self.dns.resolver.is_some_and(|a| a.ip().is_loopback())
        {
            p.add(
                "dns.dnssec",
                "\"trust_ad\" needs dns.resolver set to a validating resolver on loopback \
                 (e.g. unbound on 127.0.0.1:53): an AD bit that crossed a network proves nothing",
            );
        }
    }

    fn check_delivery(&self, p: &mut Problems) {
        for domain in self.delivery.tls_policies.keys() {
            if !valid_dns_name(domain.trim_end_matches('.')) {
                p.add(
                    "delivery.tls_policies",
                    format!("`{domain}` is not a domain name"),
                );
            }
        }
        let schedule = &self.delivery.retry_schedule;
        let key = "delivery.retry_schedule";
        if schedule.is_empty() {
            p.add(key, "needs at least one duration");
        }
        if schedule.iter().any(Duration::is_zero) {
            p.add(key, "every wait must be above zero");
        }
        if let Some(w) = schedule.windows(2).find(|w| w[1] < w[0]) {
            p.add(
                key,
                format!(
                    "waits must never shrink ({} then {})",
                    humantime::format_duration(w[0]),
                    humantime::format_duration(w[1])
                ),
            );
        }
    }

    fn check_pools_and_routes(&self, p: &mut Problems) {
        for (i, pool) in self.pools.iter().enumerate() {
            if pool.source_ips.is_empty() {
                p.add(
                    format!("pools[{i}].source_ips"),
                    "needs at least one address",
                );
            }
        }
        // A pool dropped as unreadable is reported already, and may be the one missing here.
        for required in ["regular", "high-risk", "relay"] {
            if !p.dropped_from("pools") && !self.pools.iter().any(|pool| pool.name == required) {
                p.add("pools", format!("pool `{required}` is missing"));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.domains.is_empty() {
                p.add(format!("routes[{i}].domains"), "needs at least one domain");
            }
            match (&r.auth_user, &r.auth_password_file) {
                (Some(_), None) => p.add(
                    format!("routes[{i}].auth_password_file"),
                    "missing: auth_user is set, so its password file must be too",
                ),
                (None, Some(_)) => p.add(
                    format!("routes[{i}].auth_user"),
                    "missing: auth_password_file is set, so its user must be too",
                ),
                _ => {}
            }
            let tls_enforced = matches!(r.tls, Some(TlsPolicy::Required | TlsPolicy::Verify));
            if r.auth_user.is_some() && !tls_enforced {
                p.add(
                    format!("routes[{i}].tls"),
                    "must be \"required\" or \"verify\" on a route with auth_user (a password is never sent in plaintext)",
                );
            }
            if !r.next_hop.contains(':') {
                p.add(
                    format!("routes[{i}].next_hop"),
                    format!("`{}` is not host:port", r.next_hop),
                );
            }
        }
    }

    /// A certificate without its key (or the reverse) used to fall back silently to the
    /// generated self-signed pair; the files themselves are checked by `file_problems`.
    fn check_tls_and_dkim(&self, p: &mut Problems) {
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => p.add(
                "tls.key",
                "missing: tls.cert is set, so its private key must be too",
            ),
            (None, Some(_)) => p.add(
                "tls.cert",
                "missing: tls.key is set, so its certificate chain must be too",
            ),
            _ => {}
        }
        let mut domains: Vec<String> = Vec::new();
        for (i, d) in self.dkim.iter().enumerate() {
            if !valid_dns_name(&d.domain) {
                p.add(
                    format!("dkim[{i}].domain"),
                    format!("`{}` is not a domain name", d.domain),
                );
            }
            let domain = d.domain.to_ascii_lowercase();
            if domains.contains(&domain) {
                p.add(
                    format!("dkim[{i}].domain"),
                    format!("`{domain}` has a key already (one key per domain)"),
                );
            }
            domains.push(domain);
            if d.selector.is_empty()
                || !d.selector.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
            {
                p.add(
                    format!("dkim[{i}].selector"),
                    format!("`{}` is not a DKIM selector", d.selector),
                );
            }
        }
    }

    /// Alert mail goes to these addresses and from `from`: a bad one fails only when the first
    /// alert is sent, long after start.
    fn check_notifications(&self, p: &mut Problems) {
        let n = &self.notifications;
        for (i, a) in n.operator_recipients.iter().enumerate() {
            if !crate::text::is_email_address(a) {
                p.add(
                    format!("notifications.operator_recipients[{i}]"),
                    format!("{a:?} is not an email address"),
                );
            }
        }
        if let Some(from) = &n.from {
            // `Name <addr>` or a bare address.
            let addr = match from.trim().strip_suffix('>') {
                Some(rest) => rest.rsplit_once('<').map(|(_, a)| a),
                None => Some(from.trim()),
            };
            let name_ok = !from.chars().any(char::is_control);
            if !name_ok || !addr.is_some_and(crate::text::is_email_address) {
                p.add(
                    "notifications.from",
                    format!(
                        "{from:?} is not an address like \"Outguard <postmaster@mail.example>\""
                    ),
                );
            }
        }
    }

    fn check_stores_and_spam(&self, p: &mut Problems) {
        if let (Some(s), Some(sp)) = (self.spam.suspicious_score, self.spam.spam_score)
            && s > sp
        {
            p.add("spam.suspicious_score", "must not exceed spam.spam_score");
        }
        if let Some(u) = &self.store
            && !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
        {
            p.add("store", format!("unsupported URL `{u}`"));
        }
        if let Some(u) = &self.counters {
            if let Some(rest) = u.strip_prefix("redis+cluster://") {
                check_cluster_counters(rest, p);
            } else if !(u == "memory" || u.starts_with("redis://")) {
                p.add("counters", format!("unsupported URL `{u}`"));
            }
        }
    }

    /// The `[fbl]` trust and cap keys (SPEC §9).
    fn check_fbl(&self, p: &mut Problems) {
        let f = &self.fbl;
        if let Err(e) = f.trusted_nets() {
            p.add(
                "fbl.trusted_reporters",
                format!("`{e}` is not an IP address or CIDR"),
            );
        }
        if let Some(d) = f.trusted_dkim_domains.iter().find(|d| {
            d.is_empty() || !d.contains('.') || d.chars().any(|c| c.is_whitespace() || c == '@')
        }) {
            p.add(
                "fbl.trusted_dkim_domains",
                format!("`{d}` is not a domain name"),
            );
        }
        if !(1024..=100 * 1000 * 1000).contains(&f.max_report_size) {
            p.add("fbl.max_report_size", "must be between 1KB and 100MB");
        }
        if f.reports_per_minute_per_ip == 0 {
            p.add("fbl.reports_per_minute_per_ip", "must be at least 1");
        }
    }
}

impl ListenersConfig {
    /// SPEC §9 "Guessing and hogging": every bound must be a bound (no zero that would lock
    /// everyone out or let nobody in).
    fn check(&self, p: &mut Problems) {
        let at_least_one = [
            ("listeners.max_connections", self.max_connections),
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
        for (key, _) in at_least_one.iter().filter(|(_, v)| *v == 0) {
            p.add(*key, "must be at least 1");
        }
        for (key, d) in [
            ("listeners.auth_failure_window", self.auth_failure_window),
            ("listeners.auth_lockout", self.auth_lockout),
            ("listeners.http_header_timeout", self.http_header_timeout),
        ] {
            if d.is_zero() {
                p.add(key, "must be above zero");
            }
            if d > Duration::from_secs(7 * 86_400) {
                p.add(key, "must be at most 7 days");
            }
        }
    }
}

impl DnsblConfig {
    /// Shortest and longest `interval`.
    pub const INTERVAL_RANGE: (Duration, Duration) =
        (Duration::from_secs(1), Duration::from_secs(24 * 3600));
    /// Largest `clear_checks`.
    pub const MAX_CLEAR_CHECKS: u32 = 100;

    /// Ranges, zone names, and every code: in 127.0.0.0/8, never both a listing and an error
    /// code of one zone. Each problem names its key (`dnsbl.zones[i].listed`).
    fn check(&self, p: &mut Problems) {
        let (lo, hi) = Self::INTERVAL_RANGE;
        if self.interval < lo || self.interval > hi {
            p.add(
                "dnsbl.interval",
                format!(
                    "`{}` is outside 1s–24h",
                    humantime::format_duration(self.interval)
                ),
            );
        }
        if !(1..=Self::MAX_CLEAR_CHECKS).contains(&self.clear_checks) {
            p.add(
                "dnsbl.clear_checks",
                format!(
                    "{} is outside 1–{}",
                    self.clear_checks,
                    Self::MAX_CLEAR_CHECKS
                ),
            );
        }
        let mut names: Vec<String> = Vec::new();
        for (i, z) in self.zones.iter().enumerate() {
            let key = |k: &str| format!("dnsbl.zones[{i}].{k}");
            if !valid_dns_name(&z.name) {
                p.add(key("name"), format!("`{}` is not a valid DNS name", z.name));
                continue;
            }
            let name = z.name.trim_end_matches('.').to_ascii_lowercase();
            if names.contains(&name) {
                p.add(key("name"), format!("zone `{name}` is configured twice"));
            }
            let mut ranges = |k: &str, list: &[String]| {
                let mut ok = Vec::new();
                for c in list {
                    match dnsbl_code_range(c) {
                        Ok(r) => ok.push((c.clone(), r)),
                        Err(m) => p.add(key(k), format!("zone `{name}`: {m}")),
                    }
                }
                ok
            };
            let listed = ranges("listed", &z.listed);
            let errors = ranges("errors", &z.errors);
            for (code, (a, b)) in &errors {
                if let Some((listing, _)) = listed.iter().find(|(_, (c, d))| a <= d && c <= b) {
                    p.add(
                        key("errors"),
                        format!(
                            "zone `{name}`: error code `{code}` is also a listing code (`{listing}`)"
                        ),
                    );
                }
            }
            names.push(name);
        }
    }
}

/// `counters = "redis+cluster://h1:p1,h2:p2,…[?prefix=NAME]"`: at least one `host:port`, no
/// path (a cluster has no databases), no braces in the prefix (they would become the hash tag).
fn check_cluster_counters(rest: &str, p: &mut Problems) {
    let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
    let bad_host = |h: &str| {
        let Some((host, port)) = h.rsplit_once(':') else {
            return true;
        };
        host.is_empty() || h.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0)
    };
    if let Some(h) = hosts.split(',').find(|h| bad_host(h)) {
        p.add(
            "counters",
            format!("cluster node `{h}`: use redis+cluster://host:port,host:port,…"),
        );
    }
    if query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("prefix="))
        .any(|v| v.contains(['{', '}']))
    {
        p.add(
            "counters",
            "a cluster key prefix may not contain `{` or `}`",
        );
    }
}
