//! A stacked SVG bar chart: messages per hour, one colour per pool. Pure (data in, markup out),
//! sized by a fixed viewBox so it scales; the dashboard shows the same numbers as a table for
//! screen readers and keyboard users.

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::api::stats::{Bucket, HOUR_MS};

const W: f64 = 720.0;
const H: f64 = 220.0;
const PAD_L: f64 = 40.0;
const PAD_B: f64 = 24.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// Per hour in `[since, until)`: pool → count. Hours with nothing are present and empty.
pub fn per_hour(
    buckets: &[Bucket],
    since: i64,
    until: i64,
) -> BTreeMap<i64, BTreeMap<String, u64>> {
    let mut out: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    let first = since.div_euclid(HOUR_MS) * HOUR_MS;
    let mut h = first;
    while h < until && out.len() < 24 * 31 {
        out.insert(h, BTreeMap::new());
        h += HOUR_MS;
    }
    for b in buckets {
        let pool = b.pool.clone().unwrap_or_else(|| "-".into());
        *out.entry(b.start).or_default().entry(pool).or_default() += b.messages;
    }
    out
}

/// The chart for `hours` (from [`per_hour`]).
pub fn bars(label: &str, hours: &BTreeMap<i64, BTreeMap<String, u64>>) -> Markup {
    let pools: Vec<String> = {
        let mut p: Vec<String> = hours.values().flat_map(|m| m.keys().cloned()).collect();
        p.sort();
        p.dedup();
        p
    };
    let max = hours
        .values()
        .map(|m| m.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = hours.len().max(1) as f64;
    let slot = (W - PAD_L) / n;
    let scale = (H - PAD_B - 10.0) / max;
    let colour =
        |pool: &str| COLOURS[pools.iter().position(|p| p == pool).unwrap_or(0) % COLOURS.len()];
    let mut rects = Vec::new();
    let mut ticks = Vec::new();
    for (i, (hour, by_pool)) in hours.iter().enumerate() {
        let x = PAD_L + i as f64 * slot + slot * 0.1;
        let mut y = H - PAD_B;
        for (pool, count) in by_pool {
            let h = *count as f64 * scale;
            y -= h;
            let tip = format!("{}: {count} via {pool}", super::layout::when(*hour));
            rects.push((
                format!("{x:.1}"),
                format!("{y:.1}"),
                format!("{h:.1}"),
                colour(pool),
                tip,
            ));
        }
        // A label every six hours, none so close to the right edge that it would be cut.
        if i % 6 == 0 && x + 30.0 < W {
            ticks.push((
                format!("{x:.1}"),
                super::layout::when(*hour)
                    .get(11..16)
                    .unwrap_or("")
                    .to_string(),
            ));
        }
    }
    let width = format!("{:.1}", slot * 0.8);
    html! {
        figure {
            svg role="img" aria-labelledby="chart-title" viewBox=(format!("0 0 {W} {H}")) width="100%" style="max-width:720px;background:#fff" {
                title id="chart-title" { (label) }
                line x1=(PAD_L) y1=(H - PAD_B) x2=(W) y2=(H - PAD_B) stroke="#555" {}
                text x="2" y="14" font-size="11" { (max as u64) }
                text x="2" y=(H - PAD_B) font-size="11" { "0" }
                @for (x, y, h, fill, tip) in &rects {
                    rect x=(x) y=(y) width=(width) height=(h) fill=(fill) { title { (tip) } }
                }
                @for (x, t) in &ticks {
                    text x=(x) y=(H - 6.0) font-size="10" { (t) }
                }
            }
            figcaption {
                (label) ". Pools: "
                @for p in &pools {
                    span style=(format!("color:{}", colour(p))) { "■ " } (p) " "
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(hour: i64, pool: &str, messages: u64) -> Bucket {
        Bucket {
            tenant: Some("a".into()),
            start: hour,
            pool: Some(pool.into()),
            messages,
            spam: 0,
        }
    }

    #[test]
    fn hours_are_filled_and_stacked() {
        let hours = per_hour(
            &[
                b(HOUR_MS, "regular", 3),
                b(HOUR_MS, "high-risk", 1),
                b(3 * HOUR_MS, "regular", 2),
            ],
            0,
            4 * HOUR_MS,
        );
        assert_eq!(hours.len(), 4);
        assert!(hours[&0].is_empty());
        assert_eq!(hours[&HOUR_MS]["regular"], 3);
        let svg = bars("Messages per hour", &hours).into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains("<title id=\"chart-title\">Messages per hour</title>"));
        // The tallest hour (4 messages) fills the plot height exactly.
        assert!(
            svg.contains(&format!("height=\"{:.1}\"", (H - PAD_B - 10.0) * 3.0 / 4.0)),
            "{svg}"
        );
    }
}
