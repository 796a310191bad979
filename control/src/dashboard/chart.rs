//! Charts as SVG drawn on the server (the crate doc says why). Sizes are
//! attributes, not styles, so the CSP needs no `unsafe-inline`; each bar
//! has a `<title>` (the browser's tooltip) and its number in `data-clicks`.

use crate::stats::LinkReport;
use maud::{Markup, html};

const W: f64 = 720.0;
const H: f64 = 180.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

fn when(unix: i64, bucket: &str) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return String::new();
    };
    let f = if bucket == "day" {
        time::macros::format_description!("[year]-[month]-[day]")
    } else {
        time::macros::format_description!("[month]-[day] [hour]:[minute]")
    };
    t.format(f).unwrap_or_default()
}

/// Clicks over time: one bar per bucket that has clicks, on an axis from
/// the range's first bucket to its end.
pub fn series(r: &LinkReport) -> Markup {
    let step = r.bucket_secs.max(1);
    let start = r.from - r.from.rem_euclid(step);
    let buckets = ((r.to - start + step - 1) / step).max(1);
    let max = r.series.iter().map(|s| s.1).max().unwrap_or(0).max(1);
    let plot_w = W - LEFT - 4.0;
    let plot_h = H - TOP - BOTTOM;
    let bw = plot_w / buckets as f64;
    html! {
        svg.chart #clicks-chart viewBox=(format!("0 0 {W} {H}")) role="img"
            aria-label=(format!("clicks per {}", r.bucket)) data-total=(r.total_clicks) {
            line.axis x1=(LEFT) y1=(TOP + plot_h) x2=(W - 4.0) y2=(TOP + plot_h) {}
            line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) {}
            text x=(LEFT - 6.0) y=(TOP + 10.0) text-anchor="end" { (max) }
            text x=(LEFT - 6.0) y=(TOP + plot_h) text-anchor="end" { "0" }
            text x=(LEFT) y=(H - 6.0) { (when(start, r.bucket)) }
            text x=(W - 4.0) y=(H - 6.0) text-anchor="end" { (when(r.to, r.bucket)) }
            @for (t, clicks, visitors) in &r.series {
                @let i = ((t - start) / step).clamp(0, buckets - 1);
                @let h = (*clicks as f64 / max as f64 * plot_h).max(1.0);
                // At least 3 units wide, so a lone minute in a day shows.
                rect.bar x=(format!("{:.1}", LEFT + i as f64 * bw)) y=(format!("{:.1}", TOP + plot_h - h))
                    width=(format!("{:.2}", (bw - 1.0).max(3.0))) height=(format!("{h:.1}")) data-clicks=(clicks) {
                    title { (when(*t, r.bucket)) ": " (clicks) " clicks, " (visitors) " visitors" }
                }
            }
        }
    }
}

/// Horizontal bars of a breakdown (countries, browsers, ...), the top `n`;
/// their tooltips give visitors too when the rows count them.
pub fn bars(name: &str, rows: &[(String, u64, u64)], n: usize, with_visitors: bool) -> Markup {
    let rows = &rows[..rows.len().min(n)];
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let row_h = 22.0;
    let label_w = 150.0;
    let bar_w = 300.0 - label_w - 50.0;
    let h = (rows.len().max(1) as f64) * row_h + 4.0;
    html! {
        svg.chart id=(format!("chart-{name}")) viewBox=(format!("0 0 300 {h}")) role="img" aria-label=(name) {
            @if rows.is_empty() {
                text x="0" y="15" { "no clicks" }
            }
            @for (i, (value, clicks, visitors)) in rows.iter().enumerate() {
                @let y = i as f64 * row_h + 2.0;
                @let label = if value.is_empty() { "(unknown)".to_string() } else { value.chars().take(22).collect() };
                text x="0" y=(y + 14.0) { (label) }
                rect.bar x=(label_w) y=(y + 3.0) width=(format!("{:.1}", (*clicks as f64 / max as f64 * bar_w).max(1.0))) height="14" data-value=(value) data-clicks=(clicks) {
                    title {
                        (value) ": " (clicks) " clicks"
                        @if with_visitors { ", " (visitors) " visitors" }
                    }
                }
                text x=(label_w + bar_w + 6.0) y=(y + 14.0) { (clicks) }
            }
        }
    }
}
