//! `/metrics` in the Prometheus text format (SPEC §5). Counters that only the message path can
//! see (messages by disposition and pool, scan latency) live in [`Metrics`], one per process on
//! the `Relay`; gauges (queue depth and age, trace-writer backlog, pool IP health) are read from
//! the live components at scrape time, so they cannot drift. Hand-rolled: a few families do not
//! need a metrics framework, and the text format is stable and simple.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    scan_buckets: [AtomicU64; SCAN_BUCKETS.len()],
    scan_count: AtomicU64,
    scan_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Count one message leaving the pipeline with `disposition` toward `pool` (`-` if none).
    pub fn message(&self, disposition: &str, pool: &str) {
        let mut m = self
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((disposition.to_string(), pool.to_string()))
            .or_default() += 1;
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

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
