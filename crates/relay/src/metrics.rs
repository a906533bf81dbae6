//! `/metrics` in the Prometheus text format (SPEC §5). Counters that only the message path can
//! see (messages by disposition and pool, verdicts, restrictions made, scan latency) live in
//! [`Metrics`], one per process on the `Relay`; delivery attempts by result are counted by the
//! queue itself in a [`DeliveryAttempts`] it owns. Gauges (queue depth and age, trace-writer
//! backlog, pool IP health, restrictions in force; DNSBL status comes from `dnsbl`) are read from
//! the live components at scrape time, so they cannot drift. Every counting site is one call
//! here. Hand-rolled: a few families do not need a metrics framework, and the text format is
//! stable and simple.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use outguard_delivery::queue::{DELIVERY_BUCKETS, DeliveryAttempts};
use outguard_delivery::shaping::Shaper;
use outguard_policy::{Restriction, Subject};

use crate::server::Relay;

/// Upper bounds (seconds) of the scan-latency histogram buckets.
const SCAN_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Counters fed by the message path.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (disposition, pool) → messages. Disposition: `delivered`, `quarantined`, `rejected`, ….
    messages: Mutex<BTreeMap<(String, String), u64>>,
    /// Scan verdict class → messages.
    verdicts: Mutex<BTreeMap<String, u64>>,
    /// (tenant, verdict class) → messages scanned for the tenant's accounts and connectors.
    /// Bounded: tenants are made by operators. The relay's own mail is not a tenant's.
    tenant_messages: Mutex<BTreeMap<(String, String), u64>>,
    /// (subject kind, limit) → restrictions this node made.
    restrictions: Mutex<BTreeMap<(String, String), u64>>,
    /// (effect, result) → effects of the outbox (`done`, `retried`, `given_up`, `deduplicated`,
    /// `dropped`, `unfinished`).
    effects: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Listener → SMTP sessions accepted.
    sessions: Mutex<BTreeMap<&'static str, u64>>,
    /// Listener → sessions that started TLS (implicit or STARTTLS).
    tls_sessions: Mutex<BTreeMap<&'static str, u64>>,
    /// (stage, `code enhanced`) → refusals the relay answered at MAIL, RCPT or end of DATA.
    refusals: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// AUTH attempts refused (wrong credentials, locked out).
    auth_failures: AtomicU64,
    /// Retention kind → records the pruning task deleted.
    retention_pruned: Mutex<BTreeMap<&'static str, u64>>,
    /// When the last complete pruning pass ended (Unix ms; 0 = none yet): an alert on its age
    /// catches a pruning task that keeps failing while the store grows.
    retention_last_pass: AtomicI64,
    scan_buckets: [AtomicU64; SCAN_BUCKETS.len()],
    scan_count: AtomicU64,
    scan_sum_micros: AtomicU64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key)
        .or_default() += 1;
}

/// `account`, `connector` or `tenant`.
fn subject_kind(s: &Subject) -> &'static str {
    match s {
        Subject::Account(_) => "account",
        Subject::Connector(_) => "connector",
        Subject::Tenant(_) => "tenant",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// A pruning pass ended at `now` having deleted `gone` records per kind.
    pub fn retention_pass(&self, gone: &BTreeMap<&'static str, u64>, now: i64) {
        let mut pruned = self
            .retention_pruned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (kind, n) in gone {
            *pruned.entry(*kind).or_default() += n;
        }
        self.retention_last_pass.store(now, Ordering::Relaxed);
    }

    /// Count one message leaving the pipeline with `disposition` toward `pool` (`-` if none).
    pub fn message(&self, disposition: &str, pool: &str) {
        bump(&self.messages, (disposition.to_string(), pool.to_string()));
    }

    /// Count one scan verdict (`clean`, `suspicious`, `spam`).
    pub fn verdict(&self, class: &str) {
        bump(&self.verdicts, class.to_string());
    }

    /// Count one message submitted by `tenant` (an account or connector) and its verdict class.
    pub fn tenant_message(&self, tenant: &str, class: &str) {
        bump(
            &self.tenant_messages,
            (tenant.to_string(), class.to_string()),
        );
    }

    /// Count one restriction this node made (by the policy; not repeats of one already active).
    pub fn restriction(&self, r: &Restriction) {
        let key = (
            subject_kind(&r.subject).to_string(),
            r.reason.limit.as_str().to_string(),
        );
        bump(&self.restrictions, key);
    }

    /// Count one outcome of the effects outbox: `effect` is the effect's name (or `batch` for a
    /// whole batch deduplicated or dropped), `result` what became of it.
    pub fn effect(&self, effect: &'static str, result: &'static str) {
        bump(&self.effects, (effect, result));
    }

    /// Count one SMTP session accepted on `listener`.
    pub fn session(&self, listener: &'static str) {
        bump(&self.sessions, listener);
    }

    /// Count one session on `listener` that now speaks TLS.
    pub fn tls_session(&self, listener: &'static str) {
        bump(&self.tls_sessions, listener);
    }

    /// Count one refusal at `stage` (`mail`, `rcpt`, `data`) with its codes, e.g. `550 5.1.8`.
    pub fn refusal(&self, stage: &'static str, code: u16, enhanced: &str) {
        bump(
            &self.refusals,
            (stage, format!("{code} {enhanced}").trim().to_string()),
        );
    }

    /// Count one refused AUTH.
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times [`Metrics::effect`] counted `(effect, result)` (tests, diagnostics).
    pub fn effect_count(&self, effect: &str, result: &str) -> u64 {
        self.effects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|((e, r), _)| *e == effect && *r == result)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Record how long one spam scan took.
    pub fn observe_scan(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, le) in SCAN_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.scan_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.scan_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.scan_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render_counters(&self, out: &mut String) {
        family(
            out,
            "outguard_build_info",
            "gauge",
            "The running build: its version (always 1).",
        );
        sample(
            out,
            "outguard_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        labelled(
            out,
            "outguard_smtp_sessions_total",
            "SMTP sessions accepted, by listener.",
            &self.sessions,
            |k| format!("listener=\"{}\"", esc(k)),
        );
        labelled(
            out,
            "outguard_smtp_tls_sessions_total",
            "SMTP sessions that started TLS (implicit or STARTTLS), by listener.",
            &self.tls_sessions,
            |k| format!("listener=\"{}\"", esc(k)),
        );
        labelled(
            out,
            "outguard_smtp_refusals_total",
            "Refusals answered at MAIL, RCPT or end of DATA, by stage and reply code.",
            &self.refusals,
            |(stage, code)| format!("stage=\"{}\",code=\"{}\"", esc(stage), esc(code)),
        );
        family(
            out,
            "outguard_auth_failures_total",
            "counter",
            "AUTH attempts refused (wrong credentials or locked out).",
        );
        let _ = writeln!(
            out,
            "outguard_auth_failures_total {}",
            self.auth_failures.load(Ordering::Relaxed)
        );

        family(
            out,
            "outguard_messages_total",
            "counter",
            "Messages by disposition and pool.",
        );
        let m = self
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((d, p), n) in m.iter() {
            let _ = writeln!(
                out,
                "outguard_messages_total{{disposition=\"{}\",pool=\"{}\"}} {n}",
                esc(d),
                esc(p)
            );
        }
        drop(m);
        labelled(
            out,
            "outguard_verdicts_total",
            "Spam scan verdicts by class.",
            &self.verdicts,
            |k| format!("verdict=\"{}\"", esc(k)),
        );
        labelled(
            out,
            "outguard_tenant_messages_total",
            "Messages submitted by each tenant's accounts and connectors, by scan verdict.",
            &self.tenant_messages,
            |(tenant, verdict)| format!("tenant=\"{}\",verdict=\"{}\"", esc(tenant), esc(verdict)),
        );
        labelled(
            out,
            "outguard_restrictions_total",
            "Restrictions made by the policy, by subject kind and limit.",
            &self.restrictions,
            |(kind, reason)| format!("subject=\"{kind}\",reason=\"{}\"", esc(reason)),
        );
        labelled(
            out,
            "outguard_effects_total",
            "Side effects of enforcement run by the outbox, by effect and result.",
            &self.effects,
            |(effect, result)| format!("effect=\"{effect}\",result=\"{result}\""),
        );
        labelled(
            out,
            "outguard_retention_pruned_total",
            "Records deleted by the retention task, by kind.",
            &self.retention_pruned,
            |kind| format!("kind=\"{kind}\""),
        );
        family(
            out,
            "outguard_retention_last_pass_timestamp_seconds",
            "gauge",
            "When the retention task last finished a pass (0: not yet).",
        );
        let _ = writeln!(
            out,
            "outguard_retention_last_pass_timestamp_seconds {}",
            self.retention_last_pass.load(Ordering::Relaxed) / 1000
        );
        family(
            out,
            "outguard_scan_seconds",
            "histogram",
            "Spam scan latency.",
        );
        for (i, le) in SCAN_BUCKETS.iter().enumerate() {
            let n = self.scan_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "outguard_scan_seconds_bucket{{le=\"{le}\"}} {n}");
        }
        let count = self.scan_count.load(Ordering::Relaxed);
        let sum = self.scan_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "outguard_scan_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "outguard_scan_seconds_sum {sum}");
        let _ = writeln!(out, "outguard_scan_seconds_count {count}");
    }
}

/// A counter family from a map: `labels` renders one key's label set.
fn labelled<K>(
    out: &mut String,
    name: &str,
    help: &str,
    map: &Mutex<BTreeMap<K, u64>>,
    labels: impl Fn(&K) -> String,
) {
    family(out, name, "counter", help);
    let m = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (k, n) in m.iter() {
        let _ = writeln!(out, "{name}{{{}}} {n}", labels(k));
    }
}

/// `outguard_restricted_current`: restrictions in force at `now` by subject kind (every kind
/// present, zero included, so a dashboard's query never sees the series vanish).
fn render_restricted(out: &mut String, current: &[Restriction], now: i64) {
    family(
        out,
        "outguard_restricted_current",
        "gauge",
        "Restrictions in force by subject kind.",
    );
    for kind in ["account", "connector", "tenant"] {
        let n = current
            .iter()
            .filter(|r| r.is_active(now) && subject_kind(&r.subject) == kind)
            .count();
        let _ = writeln!(out, "outguard_restricted_current{{subject=\"{kind}\"}} {n}");
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line, its label values escaped.
pub(crate) fn sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
        .collect();
    let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
}

/// Escapes a label value (backslash, quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition for one scrape; `now` is Unix ms (for queue age).
pub fn render(relay: &Relay, now: i64) -> String {
    let mut out = String::with_capacity(4096);
    relay.metrics.render_counters(&mut out);
    render_delivery_attempts(relay.queue.delivery_attempts(), &mut out);
    render_shaping(relay.queue.shaping(), relay.queue.now_ms(), &mut out);
    render_restricted(&mut out, &relay.enforcer.cache.restrictions(), now);

    let items = relay.queue.list();
    let mut depth: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for i in &items {
        *depth
            .entry((i.state.as_str(), i.pool.as_str()))
            .or_default() += 1;
    }
    family(
        &mut out,
        "outguard_queue_depth",
        "gauge",
        "Messages in this node's queue by state and pool.",
    );
    for ((state, pool), n) in depth {
        let _ = writeln!(
            out,
            "outguard_queue_depth{{state=\"{state}\",pool=\"{}\"}} {n}",
            esc(pool)
        );
    }
    let oldest = items
        .iter()
        .map(|i| i.received_at)
        .min()
        .map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    family(
        &mut out,
        "outguard_queue_oldest_age_seconds",
        "gauge",
        "Age of the oldest queued message.",
    );
    let _ = writeln!(out, "outguard_queue_oldest_age_seconds {oldest}");

    let tx = relay.tracer.sender();
    family(
        &mut out,
        "outguard_trace_backlog",
        "gauge",
        "Trace records waiting for the writer (lag).",
    );
    let _ = writeln!(
        out,
        "outguard_trace_backlog {}",
        tx.max_capacity() - tx.capacity()
    );

    family(
        &mut out,
        "outguard_pool_ip_healthy",
        "gauge",
        "1 when a pool's source IP is in rotation.",
    );
    for p in relay.queue.pools().view() {
        for (ip, ok) in p.ips {
            let _ = writeln!(
                out,
                "outguard_pool_ip_healthy{{pool=\"{}\",ip=\"{ip}\"}} {}",
                esc(&p.name),
                u8::from(ok)
            );
        }
    }
    out
}

fn render_delivery_attempts(a: &DeliveryAttempts, out: &mut String) {
    family(
        out,
        "outguard_delivery_attempts_total",
        "counter",
        "Delivery attempts per recipient by result.",
    );
    for (result, c) in [
        ("delivered", a.delivered()),
        ("deferred", a.deferred()),
        ("bounced", a.bounced()),
    ] {
        let n = c;
        let _ = writeln!(
            out,
            "outguard_delivery_attempts_total{{result=\"{result}\"}} {n}"
        );
    }
    family(
        out,
        "outguard_delivery_seconds",
        "histogram",
        "Per delivered recipient: time from entering the queue to the remote's 2xx, retries included.",
    );
    let (buckets, count, sum) = a.latency();
    for (le, n) in DELIVERY_BUCKETS.iter().zip(buckets) {
        let _ = writeln!(out, "outguard_delivery_seconds_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "outguard_delivery_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(out, "outguard_delivery_seconds_sum {sum}");
    let _ = writeln!(out, "outguard_delivery_seconds_count {count}");
}

/// Traffic shaping per (pool, destination) (issue 22): throttling replies, messages held back,
/// and the source IPs slowed or suspended now with their rate.
fn render_shaping(s: &Shaper, now: i64, out: &mut String) {
    let counters = s.counters();
    family(
        out,
        "outguard_delivery_shaping_throttled_total",
        "counter",
        "Throttling replies from receivers that slowed or suspended a (source IP, destination) pair.",
    );
    for ((pool, dest), c) in &counters {
        let _ = writeln!(
            out,
            "outguard_delivery_shaping_throttled_total{{pool=\"{}\",destination=\"{}\"}} {}",
            esc(pool),
            esc(dest),
            c.throttled
        );
    }
    family(
        out,
        "outguard_delivery_shaping_held_back_total",
        "counter",
        "Deliveries deferred because their (source IP, destination) pair was slowed or suspended.",
    );
    for ((pool, dest), c) in &counters {
        let _ = writeln!(
            out,
            "outguard_delivery_shaping_held_back_total{{pool=\"{}\",destination=\"{}\"}} {}",
            esc(pool),
            esc(dest),
            c.held_back
        );
    }
    family(
        out,
        "outguard_delivery_shaping_rate",
        "gauge",
        "Messages per minute of each pair slowed or suspended now (-1: unlimited).",
    );
    for p in s.view(now) {
        let _ = writeln!(
            out,
            "outguard_delivery_shaping_rate{{pool=\"{}\",destination=\"{}\",source_ip=\"{}\",state=\"{}\"}} {}",
            esc(&p.pool),
            esc(&p.destination),
            p.source_ip,
            p.state.as_str(),
            p.messages_per_minute.unwrap_or(-1.0)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_store::spool::{RcptState, RcptStatus};

    #[test]
    fn counters_and_histogram_render() {
        let m = Metrics::new();
        m.message("delivered", "regular");
        m.message("delivered", "regular");
        m.message("quarantined", "high-risk");
        m.observe_scan(Duration::from_micros(700));
        m.observe_scan(Duration::from_millis(30));
        let mut out = String::new();
        m.render_counters(&mut out);
        assert!(
            out.contains("outguard_messages_total{disposition=\"delivered\",pool=\"regular\"} 2\n"),
            "{out}"
        );
        assert!(out.contains(
            "outguard_messages_total{disposition=\"quarantined\",pool=\"high-risk\"} 1\n"
        ));
        assert!(out.contains("outguard_scan_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(out.contains("outguard_scan_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(out.contains("outguard_scan_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(out.contains("outguard_scan_seconds_count 2\n"));
    }

    #[test]
    fn retention_passes_add_up_by_kind() {
        let m = Metrics::new();
        let mut out = String::new();
        m.render_counters(&mut out);
        assert!(out.contains("outguard_retention_last_pass_timestamp_seconds 0\n"));
        let pass =
            |trace: u64, dnsbl: u64| BTreeMap::from([("trace", trace), ("dnsbl_checks", dnsbl)]);
        m.retention_pass(&pass(500, 3), 1_700_000_000_000);
        m.retention_pass(&pass(20, 0), 1_700_000_360_000);
        let mut out = String::new();
        m.render_counters(&mut out);
        assert!(
            out.contains("outguard_retention_pruned_total{kind=\"trace\"} 520\n"),
            "{out}"
        );
        assert!(out.contains("outguard_retention_pruned_total{kind=\"dnsbl_checks\"} 3\n"));
        assert!(out.contains("outguard_retention_last_pass_timestamp_seconds 1700000360\n"));
    }

    fn restriction(subject: Subject, limit: outguard_policy::LimitKind) -> Restriction {
        Restriction {
            subject,
            tenant: "a".into(),
            reason: outguard_policy::RestrictionReason::new(limit, vec![]),
            created_at: 1,
            until: None,
            lifted: None,
        }
    }

    #[test]
    fn verdicts_restrictions_and_attempts_render() {
        use outguard_policy::LimitKind;
        let m = Metrics::new();
        m.verdict("clean");
        m.verdict("clean");
        m.verdict("spam");
        m.tenant_message("acme", "clean");
        m.tenant_message("acme", "clean");
        m.tenant_message("globex", "spam");
        let r = restriction(Subject::Account("bob@a".into()), LimitKind::ExternalPerHour);
        m.restriction(&r);
        m.restriction(&restriction(
            Subject::Tenant("a".into()),
            LimitKind::TenantSpamPerHour,
        ));
        let mut out = String::new();
        m.render_counters(&mut out);
        assert!(
            out.contains("# TYPE outguard_verdicts_total counter\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_verdicts_total{verdict=\"clean\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_verdicts_total{verdict=\"spam\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_tenant_messages_total{tenant=\"acme\",verdict=\"clean\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_tenant_messages_total{tenant=\"globex\",verdict=\"spam\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "outguard_restrictions_total{subject=\"account\",reason=\"external_per_hour\"} 1\n"
            ),
            "{out}"
        );
        assert!(out.contains(
            "outguard_restrictions_total{subject=\"tenant\",reason=\"tenant_spam_per_hour\"} 1\n"
        ));

        let a = DeliveryAttempts::default();
        let st = |status| RcptState {
            status,
            reply: None,
            remote: None,
        };
        a.count(
            &[
                ("x".into(), st(RcptStatus::Delivered)),
                ("y".into(), st(RcptStatus::Delivered)),
                ("z".into(), st(RcptStatus::Pending)),
            ],
            Duration::from_millis(300),
        );
        a.count(
            &[("z".into(), st(RcptStatus::Failed))],
            Duration::from_secs(7200),
        );
        let mut out = String::new();
        render_delivery_attempts(&a, &mut out);
        assert!(
            out.contains("outguard_delivery_attempts_total{result=\"delivered\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("outguard_delivery_attempts_total{result=\"deferred\"} 1\n"));
        assert!(out.contains("outguard_delivery_attempts_total{result=\"bounced\"} 1\n"));
        // Only the delivered recipients are timed (both at 0.3 s).
        assert!(
            out.contains("outguard_delivery_seconds_bucket{le=\"0.1\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_delivery_seconds_bucket{le=\"0.5\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_delivery_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("outguard_delivery_seconds_sum 0.6\n"), "{out}");
        assert!(out.contains("outguard_delivery_seconds_count 2\n"), "{out}");

        // In force: active ones only (lifted and expired ones are not).
        let mut lifted = restriction(Subject::Account("c@a".into()), LimitKind::Manual);
        lifted.lifted = Some(outguard_policy::Lift {
            by: "op".into(),
            at: 5,
            reason: "fixed".into(),
        });
        let mut expired = restriction(
            Subject::Connector("10.0.0.0/8".into()),
            LimitKind::ConnectorPerHour,
        );
        expired.until = Some(50);
        let mut out = String::new();
        render_restricted(&mut out, &[r, lifted, expired], 100);
        assert!(
            out.contains("outguard_restricted_current{subject=\"account\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_restricted_current{subject=\"connector\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("outguard_restricted_current{subject=\"tenant\"} 0\n"),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
