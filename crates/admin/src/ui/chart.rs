//! SVG charts for the dashboard: stacked bars per hour (one colour per series: dispositions,
//! pools, complaints) and a line for a ratio per hour. Pure (data in, markup out), sized by a
//! fixed viewBox so they scale. Every chart is accessible on its own: `role="img"` labelled by
//! its `<title>` and a `<desc>` with the totals, axis labels, a legend in text, and the same
//! numbers as a data table (in a `<details>`) for screen readers and keyboard users.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::layout::when;
use crate::api::stats::HOUR_MS;

const W: f64 = 720.0;
const H: f64 = 240.0;
const PAD_L: f64 = 56.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 40.0;
const PLOT_H: f64 = H - PAD_B - PAD_T;
const PALETTE: [&str; 6] = [
    "#1f77b4", "#9467bd", "#17becf", "#bcbd22", "#7f7f7f", "#e377c2",
];

/// Per hour (Unix ms of its start): series → count.
pub type Hours = BTreeMap<i64, BTreeMap<String, u64>>;

/// Every hour of `[since, until)` present and empty (at most 31 days of hours).
pub fn empty_hours(since: i64, until: i64) -> Hours {
    let mut out = Hours::new();
    let mut h = since.div_euclid(HOUR_MS) * HOUR_MS;
    while h < until && out.len() < 24 * 31 {
        out.insert(h, BTreeMap::new());
        h += HOUR_MS;
    }
    out
}

/// What a chart is called and how its axes read.
pub struct Spec<'a> {
    /// Unique on the page (element ids are derived from it).
    pub id: &'a str,
    pub title: &'a str,
    /// What the vertical axis counts, e.g. "Messages".
    pub y_label: &'a str,
}

/// Fixed colours for the dispositions (so "rejected" is red on every page), a palette otherwise.
fn colour(series: &str, i: usize) -> &'static str {
    match series {
        "delivered" => "#2ca02c",
        "queued" => "#1f77b4",
        "deferred" => "#ff7f0e",
        "held" => "#9467bd",
        "quarantined" => "#8c564b",
        "bounced" => "#d62728",
        "rejected" => "#7b0000",
        "deleted" => "#7f7f7f",
        _ => PALETTE[i % PALETTE.len()],
    }
}

/// `HH:MM` of an hour.
fn clock(hour: i64) -> String {
    when(hour).get(11..16).unwrap_or("").to_string()
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// The series present in `hours`, in `order` first, then the rest by name.
fn series_of(hours: &Hours, order: &[&str]) -> Vec<String> {
    let mut present: Vec<String> = hours.values().flat_map(|m| m.keys().cloned()).collect();
    present.sort();
    present.dedup();
    let mut out: Vec<String> = order
        .iter()
        .filter(|o| present.iter().any(|p| p == *o))
        .map(|o| o.to_string())
        .collect();
    out.extend(present.into_iter().filter(|p| !order.contains(&p.as_str())));
    out
}

/// Axes, gridline labels and axis titles shared by both chart kinds.
fn frame(spec: &Spec<'_>, top: &str, mid: &str, ticks: &[(f64, String)], x_label: &str) -> Markup {
    let base = H - PAD_B;
    html! {
        line x1=(PAD_L) y1=(base) x2=(W) y2=(base) stroke="#555" {}
        line x1=(PAD_L) y1=(PAD_T) x2=(PAD_L) y2=(base) stroke="#555" {}
        line x1=(PAD_L) y1=(f1(PAD_T + PLOT_H / 2.0)) x2=(W) y2=(f1(PAD_T + PLOT_H / 2.0)) stroke="#ddd" {}
        text x=(PAD_L - 4.0) y=(PAD_T + 4.0) font-size="11" text-anchor="end" { (top) }
        text x=(PAD_L - 4.0) y=(f1(PAD_T + PLOT_H / 2.0 + 4.0)) font-size="11" text-anchor="end" { (mid) }
        text x=(PAD_L - 4.0) y=(base) font-size="11" text-anchor="end" { "0" }
        @for (x, t) in ticks {
            text x=(f1(*x)) y=(base + 14.0) font-size="10" { (t) }
        }
        text x=(f1(PAD_L + (W - PAD_L) / 2.0)) y=(H - 4.0) font-size="11" text-anchor="middle" { (x_label) }
        text x="12" y=(f1(PAD_T + PLOT_H / 2.0)) font-size="11" text-anchor="middle"
            transform=(format!("rotate(-90 12 {})", f1(PAD_T + PLOT_H / 2.0))) { (spec.y_label) }
    }
}

/// A tick label every six hours, none so close to the right edge that it would be cut.
fn tick(i: usize, x: f64, hour: i64, ticks: &mut Vec<(f64, String)>) {
    if i.is_multiple_of(6) && x + 30.0 < W {
        ticks.push((x, clock(hour)));
    }
}

/// Stacked bars: one bar per hour, one segment per series (ordered by `order`, then by name).
pub fn stacked(spec: &Spec<'_>, hours: &Hours, order: &[&str]) -> Markup {
    let series = series_of(hours, order);
    let max = hours
        .values()
        .map(|m| m.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (W - PAD_L) / hours.len().max(1) as f64;
    let scale = PLOT_H / max as f64;
    let col = |s: &str| colour(s, series.iter().position(|x| x == s).unwrap_or(0));
    let mut rects = Vec::new();
    let mut ticks = Vec::new();
    for (i, (hour, by)) in hours.iter().enumerate() {
        let x = PAD_L + i as f64 * slot + slot * 0.1;
        let mut y = H - PAD_B;
        for s in &series {
            let n = by.get(s).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = n as f64 * scale;
            y -= h;
            let tip = format!("{}: {s}: {n}", clock(*hour));
            rects.push((f1(x), f1(y), f1(h), col(s), tip));
        }
        tick(i, x, *hour, &mut ticks);
    }
    let totals: Vec<(String, u64)> = series
        .iter()
        .map(|s| (s.clone(), hours.values().filter_map(|m| m.get(s)).sum()))
        .collect();
    let desc = if totals.is_empty() {
        "No data in this window.".to_string()
    } else {
        let parts: Vec<String> = totals.iter().map(|(s, n)| format!("{s} {n}")).collect();
        format!("Totals: {}.", parts.join(", "))
    };
    let width = f1(slot * 0.8);
    let mid = if max >= 2 {
        (max / 2).to_string()
    } else {
        String::new()
    };
    html! {
        figure.chart id=(spec.id) {
            svg role="img" aria-labelledby=(format!("{0}-title {0}-desc", spec.id))
                viewBox=(format!("0 0 {W} {H}")) width="100%" style="background:#fff" {
                title id=(format!("{}-title", spec.id)) { (spec.title) }
                desc id=(format!("{}-desc", spec.id)) { (desc) }
                (frame(spec, &max.to_string(), &mid, &ticks, "Hour (UTC)"))
                @for (x, y, h, fill, tip) in &rects {
                    rect x=(x) y=(y) width=(width) height=(h) fill=(fill) { title { (tip) } }
                }
            }
            figcaption {
                strong { (spec.title) } ". " (desc) " "
                @for s in &series {
                    span.key { span style=(format!("color:{}", col(s))) aria-hidden="true" { "■" } " " (s) } " "
                }
            }
            (table(spec, hours, &series))
        }
    }
}

/// The chart's numbers as a table: one row per hour with data, one column per series.
fn table(spec: &Spec<'_>, hours: &Hours, series: &[String]) -> Markup {
    html! {
        details {
            summary { "Data table: " (spec.title) }
            table {
                caption { (spec.title) " (" (spec.y_label) " per hour)" }
                thead { tr {
                    th scope="col" { "Hour (UTC)" }
                    @for s in series { th scope="col" { (s) } }
                    th scope="col" { "Total" }
                } }
                tbody {
                    @for (hour, by) in hours.iter().filter(|(_, m)| m.values().any(|n| *n > 0)) {
                        tr {
                            th scope="row" { (when(*hour)) }
                            @for s in series { td { (by.get(s).copied().unwrap_or(0)) } }
                            td { (by.values().sum::<u64>()) }
                        }
                    }
                }
            }
        }
    }
}

/// A ratio per hour in percent (0–100) as a line; hours without a value (`None`: no mail)
/// break the line. `counts` is (part, whole) per hour for the table and the tooltips.
pub fn ratio_line(spec: &Spec<'_>, counts: &BTreeMap<i64, (u64, u64)>) -> Markup {
    let slot = (W - PAD_L) / counts.len().max(1) as f64;
    let base = H - PAD_B;
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    let mut dots = Vec::new();
    let mut ticks = Vec::new();
    for (i, (hour, (part, whole))) in counts.iter().enumerate() {
        let x = PAD_L + i as f64 * slot + slot / 2.0;
        tick(i, PAD_L + i as f64 * slot + slot * 0.1, *hour, &mut ticks);
        if *whole == 0 {
            if runs.last().is_some_and(|r| !r.is_empty()) {
                runs.push(Vec::new());
            }
            continue;
        }
        let pct = 100.0 * *part as f64 / *whole as f64;
        let y = base - pct / 100.0 * PLOT_H;
        if let Some(r) = runs.last_mut() {
            r.push((x, y));
        }
        let tip = format!("{}: {pct:.1} % ({part} of {whole})", clock(*hour));
        dots.push((f1(x), f1(y), tip));
    }
    let lines: Vec<String> = runs
        .iter()
        .filter(|r| r.len() > 1)
        .map(|r| {
            r.iter()
                .map(|(x, y)| format!("{},{}", f1(*x), f1(*y)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let (part, whole) = counts
        .values()
        .fold((0, 0), |(p, w), (a, b)| (p + a, w + b));
    let desc = if whole == 0 {
        "No mail in this window.".to_string()
    } else {
        format!(
            "Overall {:.1} % ({part} of {whole} messages).",
            100.0 * part as f64 / whole as f64
        )
    };
    html! {
        figure.chart id=(spec.id) {
            svg role="img" aria-labelledby=(format!("{0}-title {0}-desc", spec.id))
                viewBox=(format!("0 0 {W} {H}")) width="100%" style="background:#fff" {
                title id=(format!("{}-title", spec.id)) { (spec.title) }
                desc id=(format!("{}-desc", spec.id)) { (desc) }
                (frame(spec, "100 %", "50 %", &ticks, "Hour (UTC)"))
                @for pts in &lines {
                    polyline points=(pts) fill="none" stroke="#d62728" stroke-width="2" {}
                }
                @for (x, y, tip) in &dots {
                    circle cx=(x) cy=(y) r="3" fill="#d62728" { title { (tip) } }
                }
            }
            figcaption { strong { (spec.title) } ". " (desc) }
            details {
                summary { "Data table: " (spec.title) }
                table {
                    caption { (spec.title) }
                    thead { tr {
                        th scope="col" { "Hour (UTC)" } th scope="col" { "Spam" }
                        th scope="col" { "Messages" } th scope="col" { "Ratio" }
                    } }
                    tbody {
                        @for (hour, (p, w)) in counts.iter().filter(|(_, (_, w))| *w > 0) {
                            tr {
                                th scope="row" { (when(*hour)) }
                                td { (p) } td { (w) }
                                td { (format!("{:.1} %", 100.0 * *p as f64 / *w as f64)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Two counts side by side per UTC day (`days`: the day's start → (first, second)), e.g. the
/// restrictions that really happened and those a simulation makes. `names` label the two.
pub fn daily_pairs(
    spec: &Spec<'_>,
    days: &BTreeMap<i64, (u64, u64)>,
    names: (&str, &str),
) -> Markup {
    let max = days
        .values()
        .map(|(a, b)| *a.max(b))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (W - PAD_L) / days.len().max(1) as f64;
    let scale = PLOT_H / max as f64;
    let every = days.len().div_ceil(10).max(1);
    let colours = ("#7f7f7f", "#1f77b4");
    let mut rects = Vec::new();
    let mut ticks = Vec::new();
    for (i, (day, (a, b))) in days.iter().enumerate() {
        let x = PAD_L + i as f64 * slot + slot * 0.1;
        let date = when(*day).get(5..10).unwrap_or("").to_string();
        for (k, (n, fill, name)) in [(a, colours.0, names.0), (b, colours.1, names.1)]
            .into_iter()
            .enumerate()
        {
            let h = *n as f64 * scale;
            let bx = x + k as f64 * slot * 0.4;
            rects.push((
                f1(bx),
                f1(H - PAD_B - h),
                f1(h),
                fill,
                format!("{date}: {name}: {n}"),
            ));
        }
        if i.is_multiple_of(every) && x + 30.0 < W {
            ticks.push((x, date));
        }
    }
    let (ta, tb): (u64, u64) = days.values().fold((0, 0), |(x, y), (a, b)| (x + a, y + b));
    let desc = format!("Totals: {} {ta}, {} {tb}.", names.0, names.1);
    let width = f1(slot * 0.38);
    let mid = if max >= 2 {
        (max / 2).to_string()
    } else {
        String::new()
    };
    html! {
        figure.chart id=(spec.id) {
            svg role="img" aria-labelledby=(format!("{0}-title {0}-desc", spec.id))
                viewBox=(format!("0 0 {W} {H}")) width="100%" style="background:#fff" {
                title id=(format!("{}-title", spec.id)) { (spec.title) }
                desc id=(format!("{}-desc", spec.id)) { (desc) }
                (frame(spec, &max.to_string(), &mid, &ticks, "Day (UTC)"))
                @for (x, y, h, fill, tip) in &rects {
                    rect x=(x) y=(y) width=(width) height=(h) fill=(fill) { title { (tip) } }
                }
            }
            figcaption {
                strong { (spec.title) } ". " (desc) " "
                span.key { span style=(format!("color:{}", colours.0)) aria-hidden="true" { "■" } " " (names.0) } " "
                span.key { span style=(format!("color:{}", colours.1)) aria-hidden="true" { "■" } " " (names.1) }
            }
            details {
                summary { "Data table: " (spec.title) }
                table {
                    caption { (spec.title) " (" (spec.y_label) " per day)" }
                    thead { tr {
                        th scope="col" { "Day (UTC)" }
                        th scope="col" { (names.0) }
                        th scope="col" { (names.1) }
                    } }
                    tbody {
                        @for (day, (a, b)) in days {
                            tr { th scope="row" { (when(*day).get(..10).unwrap_or("")) } td { (a) } td { (b) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(rows: &[(i64, &str, u64)]) -> Hours {
        let mut h = empty_hours(0, 4 * HOUR_MS);
        for (at, s, n) in rows {
            *h.entry(*at).or_default().entry(s.to_string()).or_default() += n;
        }
        h
    }

    const SPEC: Spec<'static> = Spec {
        id: "t",
        title: "Messages per hour",
        y_label: "Messages",
    };

    #[test]
    fn stacked_bars_have_series_values_and_a_table() {
        let h = hours(&[
            (HOUR_MS, "delivered", 3),
            (HOUR_MS, "rejected", 1),
            (3 * HOUR_MS, "delivered", 2),
        ]);
        assert_eq!(h.len(), 4);
        let svg = stacked(&SPEC, &h, &["delivered", "rejected"]).into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains("<title id=\"t-title\">Messages per hour</title>"));
        assert!(svg.contains("aria-labelledby=\"t-title t-desc\""), "{svg}");
        assert!(svg.contains("Totals: delivered 5, rejected 1."), "{svg}");
        assert!(svg.contains("<title>01:00: delivered: 3</title>"), "{svg}");
        assert!(svg.contains("Hour (UTC)") && svg.contains(">Messages</text>"));
        // The tallest hour (4 messages) fills the plot height: delivered is 3/4 of it.
        assert!(
            svg.contains(&format!("height=\"{}\"", f1(PLOT_H * 3.0 / 4.0))),
            "{svg}"
        );
        // Dispositions keep their colour; the table has the hour's numbers and total.
        assert!(svg.contains("fill=\"#7b0000\""), "rejected is red: {svg}");
        assert!(
            svg.contains(
                "<th scope=\"row\">1970-01-01 01:00:00 UTC</th><td>3</td><td>1</td><td>4</td>"
            ),
            "{svg}"
        );
    }

    #[test]
    fn empty_chart_says_so() {
        let svg = stacked(&SPEC, &empty_hours(0, 2 * HOUR_MS), &[]).into_string();
        assert!(svg.contains("No data in this window."), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 0);
    }

    #[test]
    fn ratio_line_breaks_on_empty_hours() {
        let counts: BTreeMap<i64, (u64, u64)> = [
            (0, (1, 4)),
            (HOUR_MS, (1, 2)),
            (2 * HOUR_MS, (0, 0)),
            (3 * HOUR_MS, (0, 5)),
        ]
        .into_iter()
        .collect();
        let spec = Spec {
            id: "r",
            title: "Spam ratio",
            y_label: "Spam %",
        };
        let svg = ratio_line(&spec, &counts).into_string();
        assert_eq!(
            svg.matches("<polyline").count(),
            1,
            "one run of two points: {svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
        assert!(
            svg.contains("<title>01:00: 50.0 % (1 of 2)</title>"),
            "{svg}"
        );
        assert!(svg.contains("Overall 18.2 % (2 of 11 messages)."), "{svg}");
    }
}
