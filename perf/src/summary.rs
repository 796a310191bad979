//! The harness's table and plot, from a results directory.
//!
//! `perf/run.sh` leaves, per server, mode (`closed`: saturation, `open`:
//! fixed rate) and round, `runs/SERVER-MODE-ROUND.json` (the generator's
//! [`crate::stats::Summary`]) and `runs/SERVER-MODE-ROUND.perfstat` (`perf stat -x,` on
//! the server process over the measured window, `SECONDS` long, first line
//! `# window_s=SECONDS`). This module takes the median of each figure over
//! the rounds, divides by nginx's, and writes `summary.md` and `plot.svg`.
//!
//! Medians, because one round of a shared machine can be disturbed by a
//! neighbour's compile; ratios, because they move less than the absolute
//! numbers between runs.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The parts of a run's JSON the table needs.
#[derive(Debug, Clone, Deserialize)]
struct Run {
    rps: f64,
    latency_us: Lat,
    errors: serde_json::Value,
    client_cpu_ns_per_request: f64,
}

#[derive(Debug, Clone, Deserialize)]
struct Lat {
    p50: f64,
    p99: f64,
}

/// Counters from one `perf stat -x,` file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerfStat {
    pub window_s: f64,
    /// ms of CPU time.
    pub task_clock_ms: Option<f64>,
    pub instructions: Option<f64>,
    pub cycles: Option<f64>,
}

/// Parses `perf stat -x,` output; unsupported counters stay `None`.
pub fn parse_perfstat(text: &str) -> PerfStat {
    let mut s = PerfStat::default();
    for line in text.lines() {
        if let Some(w) = line.strip_prefix("# window_s=") {
            s.window_s = w.trim().parse().unwrap_or(0.0);
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 3 {
            continue;
        }
        let value = f[0].trim().parse::<f64>().ok();
        let event = f[2].trim();
        match event.split(':').next().unwrap_or("") {
            "task-clock" => s.task_clock_ms = value,
            "instructions" => s.instructions = value,
            "cycles" => s.cycles = value,
            _ => {}
        }
    }
    s
}

/// Medians of one server over the rounds.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub server: String,
    pub rounds: usize,
    pub rps: f64,
    pub rps_all: Vec<f64>,
    pub sat_p50: f64,
    pub sat_p99: f64,
    pub open_p50: Option<f64>,
    pub open_p99: Option<f64>,
    pub open_p50_all: Vec<f64>,
    pub open_p99_all: Vec<f64>,
    pub open_rate: Option<f64>,
    pub cpu_us_per_req: Option<f64>,
    pub instr_per_req: Option<f64>,
    pub cycles_per_req: Option<f64>,
    pub client_ns_per_req: f64,
    pub errors: u64,
    /// User-space instructions per request counted by valgrind
    /// (`instructions/instructions.tsv`, written by `perf/instructions.sh`).
    pub vg_instr_per_req: Option<f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Reads every run of `dir/runs` into one row per server.
pub fn collect(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let runs = dir.join("runs");
    // server -> mode -> [(run, perfstat)]
    let mut by: BTreeMap<String, BTreeMap<String, Vec<(Run, PerfStat)>>> = BTreeMap::new();
    for entry in std::fs::read_dir(&runs).with_context(|| format!("reading {}", runs.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = stem.rsplitn(3, '-').collect();
        let [_round, mode, server] = parts[..] else {
            continue;
        };
        let run: Run = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        let stat = std::fs::read_to_string(path.with_extension("perfstat"))
            .map(|t| parse_perfstat(&t))
            .unwrap_or_default();
        by.entry(server.to_owned())
            .or_default()
            .entry(mode.to_owned())
            .or_default()
            .push((run, stat));
    }
    if by.is_empty() {
        bail!("no runs/*.json in {}", dir.display());
    }
    let mut rows = Vec::new();
    for (server, modes) in by {
        let mut row = Row {
            server: server.clone(),
            ..Row::default()
        };
        if let Some(closed) = modes.get("closed") {
            row.rounds = closed.len();
            row.rps_all = closed.iter().map(|(r, _)| r.rps).collect();
            row.rps = median(row.rps_all.clone()).unwrap_or(0.0);
            row.sat_p50 =
                median(closed.iter().map(|(r, _)| r.latency_us.p50).collect()).unwrap_or(0.0);
            row.sat_p99 =
                median(closed.iter().map(|(r, _)| r.latency_us.p99).collect()).unwrap_or(0.0);
            row.client_ns_per_req = median(
                closed
                    .iter()
                    .map(|(r, _)| r.client_cpu_ns_per_request)
                    .collect(),
            )
            .unwrap_or(0.0);
            // Requests in the perf stat window: the run's rate times the window.
            let per_req = |f: &dyn Fn(&PerfStat) -> Option<f64>| {
                median(
                    closed
                        .iter()
                        .filter_map(|(r, s)| {
                            let n = r.rps * s.window_s;
                            f(s).filter(|_| n > 0.0).map(|v| v / n)
                        })
                        .collect(),
                )
            };
            row.cpu_us_per_req = per_req(&|s| s.task_clock_ms.map(|ms| ms * 1000.0));
            row.instr_per_req = per_req(&|s| s.instructions);
            row.cycles_per_req = per_req(&|s| s.cycles);
        }
        if let Some(open) = modes.get("open") {
            row.open_p50_all = open.iter().map(|(r, _)| r.latency_us.p50).collect();
            row.open_p99_all = open.iter().map(|(r, _)| r.latency_us.p99).collect();
            row.open_p50 = median(row.open_p50_all.clone());
            row.open_p99 = median(row.open_p99_all.clone());
            row.open_rate = median(open.iter().map(|(r, _)| r.rps).collect());
        }
        row.errors = modes
            .values()
            .flatten()
            .map(|(r, _)| {
                r.errors
                    .as_object()
                    .map(|o| o.values().filter_map(|v| v.as_u64()).sum::<u64>())
                    .unwrap_or(0)
            })
            .sum();
        rows.push(row);
    }
    if let Ok(tsv) = std::fs::read_to_string(dir.join("instructions/instructions.tsv")) {
        for (server, per) in parse_instructions(&tsv) {
            if let Some(row) = rows.iter_mut().find(|r| r.server == server) {
                row.vg_instr_per_req = Some(per);
            }
        }
    }
    // nginx first: it is the baseline of every ratio.
    rows.sort_by_key(|r| (r.server != "nginx", r.server.clone()));
    Ok(rows)
}

/// `server<TAB>...<TAB>instructions_per_request` lines after a header.
pub fn parse_instructions(tsv: &str) -> Vec<(String, f64)> {
    tsv.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.first()?.to_string(), f.last()?.trim().parse().ok()?))
        })
        .collect()
}

/// The markdown table.
pub fn table(rows: &[Row]) -> String {
    let base = rows.iter().find(|r| r.server == "nginx").cloned();
    let ratio = |v: Option<f64>, b: Option<f64>| match (v, b) {
        (Some(v), Some(b)) if b > 0.0 => format!(" (x{:.2})", v / b),
        _ => String::new(),
    };
    let num = |v: Option<f64>, digits: usize| match v {
        Some(v) => format!("{v:.digits$}"),
        None => "n/a".into(),
    };
    let b = base.as_ref();
    let mut s = String::from(
        "| server | req/s at saturation | p50 us at fixed rate | p99 us at fixed rate | p50 / p99 us at saturation | server CPU us/req | instructions/req | cycles/req | user-space instructions/req (valgrind) | errors |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {:.0}{} | {}{} | {}{} | {:.0} / {:.0} | {}{} | {}{} | {}{} | {}{} | {} |\n",
            r.server,
            r.rps,
            ratio(Some(r.rps), b.map(|b| b.rps)),
            num(r.open_p50, 0),
            ratio(r.open_p50, b.and_then(|b| b.open_p50)),
            num(r.open_p99, 0),
            ratio(r.open_p99, b.and_then(|b| b.open_p99)),
            r.sat_p50,
            r.sat_p99,
            num(r.cpu_us_per_req, 2),
            ratio(r.cpu_us_per_req, b.and_then(|b| b.cpu_us_per_req)),
            num(r.instr_per_req, 0),
            ratio(r.instr_per_req, b.and_then(|b| b.instr_per_req)),
            num(r.cycles_per_req, 0),
            ratio(r.cycles_per_req, b.and_then(|b| b.cycles_per_req)),
            num(r.vg_instr_per_req, 0),
            ratio(r.vg_instr_per_req, b.and_then(|b| b.vg_instr_per_req)),
            r.errors,
        );
    }
    let rate = rows.iter().filter_map(|r| r.open_rate).fold(0.0, f64::max);
    s += &format!(
        "\nMedians of {} rounds; (xN) is the ratio to nginx. Fixed rate: open loop at ~{rate:.0} req/s, latency from the intended send time.\n",
        rows.first().map(|r| r.rounds).unwrap_or(0)
    );
    s
}

/// Reads `dir`, writes `summary.md` and `plot.svg` there, returns the table.
pub fn summarize(dir: &Path) -> anyhow::Result<String> {
    let rows = collect(dir)?;
    let t = table(&rows);
    std::fs::write(dir.join("summary.md"), &t)?;
    std::fs::write(dir.join("plot.svg"), crate::svg::plot(&rows))?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_perf_stat_csv_with_unsupported_counters() {
        let text = "# window_s=5\n\n5010.5,msec,task-clock,5010500000,100.00,1.0,CPUs utilized\n<not supported>,,instructions,0,100.00,,\n123456,,cycles,5010500000,100.00,,\n";
        let s = parse_perfstat(text);
        assert_eq!(s.window_s, 5.0);
        assert_eq!(s.task_clock_ms, Some(5010.5));
        assert_eq!(s.instructions, None);
        assert_eq!(s.cycles, Some(123456.0));
    }

    #[test]
    fn reads_valgrind_instruction_counts() {
        let tsv = "server\tIr(2000)\tIr(22000)\tinstructions_per_request\nnginx\t1\t2\t9172\nengine\t3\t4\t6868\nbroken\n";
        assert_eq!(
            parse_instructions(tsv),
            [("nginx".to_owned(), 9172.0), ("engine".to_owned(), 6868.0)]
        );
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let rows = vec![
            Row {
                server: "nginx".into(),
                rps: 100.0,
                cpu_us_per_req: Some(10.0),
                rounds: 3,
                ..Row::default()
            },
            Row {
                server: "engine".into(),
                rps: 250.0,
                cpu_us_per_req: Some(4.0),
                rounds: 3,
                ..Row::default()
            },
        ];
        let t = table(&rows);
        assert!(t.contains("| engine | 250 (x2.50) |"), "{t}");
        assert!(t.contains("4.00 (x0.40)"), "{t}");
    }
}
