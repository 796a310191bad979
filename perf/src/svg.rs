//! A dependency-free SVG of the harness results: throughput at saturation
//! (left) and p50 / p99 latency at the fixed rate (right), one group of
//! bars per server (and connection count), each round as a dot over its
//! median bar. Panels widen with the number of rows.

use crate::summary::Row;
use std::fmt::Write;

const H: f64 = 420.0;
/// Narrowest panel; each row gets at least `SLOT` of width.
const PANEL: f64 = 400.0;
const SLOT: f64 = 90.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 360.0;
const COLORS: [&str; 4] = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"];

/// Renders the plot.
pub fn plot(rows: &[Row]) -> String {
    let panel_w = PANEL.max(SLOT * rows.len() as f64);
    let w = 2.0 * panel_w + 100.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    // Left: throughput.
    let series: Vec<(String, f64, Vec<f64>)> = rows
        .iter()
        .map(|r| (r.label(), r.rps, r.rps_all.clone()))
        .collect();
    panel(
        &mut s,
        40.0,
        panel_w,
        "requests/s at saturation (median, dots: rounds)",
        &[series],
    );
    // Right: latency at the fixed rate, p50 and p99 side by side.
    let p50: Vec<(String, f64, Vec<f64>)> = rows
        .iter()
        .map(|r| (r.label(), r.open_p50.unwrap_or(0.0), r.open_p50_all.clone()))
        .collect();
    let p99: Vec<(String, f64, Vec<f64>)> = rows
        .iter()
        .map(|r| (r.label(), r.open_p99.unwrap_or(0.0), r.open_p99_all.clone()))
        .collect();
    panel(
        &mut s,
        80.0 + panel_w,
        panel_w,
        "latency us at fixed rate (p50 | p99)",
        &[p50, p99],
    );
    s += "</svg>\n";
    s
}

/// One bar chart at x offset `x0`; `groups` are bar series drawn side by side.
fn panel(
    s: &mut String,
    x0: f64,
    width: f64,
    title: &str,
    groups: &[Vec<(String, f64, Vec<f64>)>],
) {
    let max = groups
        .iter()
        .flatten()
        .flat_map(|(_, m, all)| all.iter().copied().chain([*m]))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="25" font-size="14">{title}</text>"#,
        x0
    );
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{BOTTOM}" x2="{}" y2="{BOTTOM}" stroke="black"/>"#,
        x0 + width
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = BOTTOM - (BOTTOM - TOP) * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end" font-size="10">{:.0}</text>"##,
            x0 + width,
            x0 - 3.0,
            y + 3.0,
            v
        );
    }
    let n = groups.first().map(Vec::len).unwrap_or(0).max(1);
    let slot = width / n as f64;
    let bar = slot * 0.7 / groups.len() as f64;
    for (gi, series) in groups.iter().enumerate() {
        for (i, (name, med, all)) in series.iter().enumerate() {
            let x = x0 + slot * i as f64 + slot * 0.15 + bar * gi as f64;
            let h = (BOTTOM - TOP) * med / max;
            let color = COLORS[i % COLORS.len()];
            let opacity = if gi == 0 { 1.0 } else { 0.55 };
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}" fill-opacity="{opacity}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{med:.0}</text>"#,
                BOTTOM - h,
                x + bar / 2.0,
                BOTTOM - h - 4.0
            );
            for v in all {
                let y = BOTTOM - (BOTTOM - TOP) * v / max;
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{y:.1}" r="2.5" fill="black"/>"#,
                    x + bar / 2.0
                );
            }
            if gi == 0 {
                // "engine-uring c64": the server, the connections under it.
                let cx = x0 + slot * i as f64 + slot / 2.0;
                let (server, conns) = name.split_once(' ').unwrap_or((name, ""));
                let _ = writeln!(
                    s,
                    r#"<text x="{cx:.1}" y="{}" text-anchor="middle">{server}</text>"#,
                    BOTTOM + 18.0
                );
                if !conns.is_empty() {
                    let _ = writeln!(
                        s,
                        r#"<text x="{cx:.1}" y="{}" text-anchor="middle" font-size="10">{conns}</text>"#,
                        BOTTOM + 32.0
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_bar_and_dots_per_server() {
        let rows = vec![
            Row {
                server: "nginx".into(),
                rps: 100.0,
                rps_all: vec![90.0, 100.0, 110.0],
                open_p50: Some(50.0),
                open_p99: Some(200.0),
                open_p50_all: vec![50.0],
                open_p99_all: vec![200.0],
                ..Row::default()
            },
            Row {
                server: "engine".into(),
                rps: 300.0,
                rps_all: vec![300.0],
                ..Row::default()
            },
        ];
        let svg = plot(&rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Each server is labelled under both panels.
        assert_eq!(svg.matches(">nginx</text>").count(), 2);
        assert_eq!(svg.matches(">engine</text>").count(), 2);
        // Bars: 2 throughput + 2 servers x (p50, p99).
        assert_eq!(svg.matches("<rect x=").count(), 6);
        // Dots: one per round: 3 + 1 throughput, 1 + 1 latency (engine has none).
        assert_eq!(svg.matches("<circle").count(), 6);
    }
}
