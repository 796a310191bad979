//! The harness's table and plot, from a results directory.
//!
//! `perf/run.sh` leaves, per connection mode ([`crate::mode::Mode`]: keep-alive
//! or new connections, plain or TLS), server, connection count, loop (`closed`:
//! saturation, `open`: fixed rate) and round,
//! `runs/CONNECTION_MODE/SERVER-cCONNS-LOOP-ROUND.json` (the generator's
//! [`crate::stats::Summary`]; older directories have every run directly in
//! `runs/`, all keep-alive, and the oldest no `-cCONNS` part) and next to it,
//! over the measured window:
//! - `.proc`: `key=value` lines, `window_ns`, `clk_tck`, `server_cpu`, and the
//!   server's `/proc/PID/stat` line before and after (`stat_before`, `stat_after`),
//! - `.irq.before` / `.irq.after`: copies of `/proc/interrupts`,
//! - `.perfstat` (where written): `perf stat -x,` on the server process, first
//!   line `# window_s=SECONDS`.
//!
//! This module takes the median of each figure over the rounds, divides by
//! nginx's in the same connection mode at the same connection count, and
//! writes `summary.md` (with the harness's `notes.txt`, if any, at the end),
//! `plot.svg` (keep-alive) and `plot-MODE.svg` for each other connection mode.
//!
//! Medians, because one round of a shared machine can be disturbed by a
//! neighbour's compile; ratios, because they move less than the absolute
//! numbers between runs.

use crate::mode::Mode;
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
    #[serde(default)]
    tls: Option<RunTls>,
}

#[derive(Debug, Clone, Deserialize)]
struct RunTls {
    handshakes: u64,
    resumed: u64,
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

/// The server's CPU time and the interrupts its core took over one run's
/// measured window (from `.proc` and `.irq.before` / `.irq.after`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcWindow {
    pub window_s: f64,
    /// User + system CPU time of the whole server process (every thread).
    pub cpu_s: f64,
    /// Interrupts delivered to the server's CPU during the window, by
    /// `/proc/interrupts` row (`RES`, `CAL`, `TLB`, `LOC`, `36`, ...), and
    /// `total` (every row).
    pub irq: BTreeMap<String, u64>,
}

/// utime + stime (clock ticks) of a `/proc/PID/stat` line.
pub fn stat_ticks(line: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// One CPU's column of `/proc/interrupts`, by row label, plus `total` (the
/// sum of every row that has a count for each CPU; `ERR` and `MIS` have a
/// single system-wide count and are left out).
pub fn parse_interrupts(text: &str, cpu: usize) -> Option<BTreeMap<String, u64>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let ncpu = header.len();
    let col = header.iter().position(|c| *c == format!("CPU{cpu}"))?;
    let mut rows = BTreeMap::new();
    let mut total = 0u64;
    for line in lines {
        let Some((label, rest)) = line.split_once(':') else {
            continue;
        };
        let counts: Vec<u64> = rest
            .split_whitespace()
            .take(ncpu)
            .map_while(|t| t.parse().ok())
            .collect();
        if counts.len() != ncpu {
            continue;
        }
        total += counts[col];
        rows.insert(label.trim().to_owned(), counts[col]);
    }
    rows.insert("total".to_owned(), total);
    Some(rows)
}

/// Reads a run's `.proc`, `.irq.before` and `.irq.after` files (`base` is
/// the run's path without extension); `None` if any is missing or malformed.
pub fn read_proc_window(base: &Path) -> Option<ProcWindow> {
    let with = |ext: &str| {
        let mut p = base.as_os_str().to_owned();
        p.push(ext);
        std::fs::read_to_string(p).ok()
    };
    let proc = with(".proc")?;
    let kv: BTreeMap<&str, &str> = proc
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let window_s = kv.get("window_ns")?.parse::<f64>().ok()? / 1e9;
    let clk_tck = kv.get("clk_tck")?.parse::<f64>().ok()?;
    let cpu: usize = kv.get("server_cpu")?.parse().ok()?;
    let ticks =
        stat_ticks(kv.get("stat_after")?)?.checked_sub(stat_ticks(kv.get("stat_before")?)?)?;
    let before = parse_interrupts(&with(".irq.before")?, cpu)?;
    let after = parse_interrupts(&with(".irq.after")?, cpu)?;
    let irq = after
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                a.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .collect();
    Some(ProcWindow {
        window_s,
        cpu_s: ticks as f64 / clk_tck,
        irq,
    })
}

/// The interrupt rows of the table, in order: rescheduling, function call
/// and TLB shootdown IPIs (cross-core), and every interrupt on the core.
pub const IRQ_ROWS: [&str; 4] = ["RES", "CAL", "TLB", "total"];

/// Medians of one server in one connection mode at one connection count
/// over the rounds.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub server: String,
    /// The connection mode (`keepalive`, `tls-full`, ...); directories from
    /// before the modes are all `keepalive`.
    pub mode: String,
    /// Connections of the runs; `None` in directories from before the harness
    /// ran several counts.
    pub conns: Option<u32>,
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
    /// Server CPU time (user + system) per request: from `/proc/PID/stat`
    /// where recorded, else `perf stat`'s task-clock.
    pub cpu_us_per_req: Option<f64>,
    pub instr_per_req: Option<f64>,
    pub cycles_per_req: Option<f64>,
    /// Interrupts on the server's CPU per request, [`IRQ_ROWS`] order.
    pub irq_per_req: [Option<f64>; 4],
    pub client_ns_per_req: f64,
    pub errors: u64,
    /// User-space instructions per request counted by valgrind
    /// (`instructions/instructions.tsv`, written by `perf/instructions.sh`;
    /// keep-alive only).
    pub vg_instr_per_req: Option<f64>,
    /// TLS modes: handshakes and how many the server resumed, over every
    /// run of the row (warm-up included).
    pub handshakes: u64,
    pub resumed: u64,
}

impl Row {
    /// `server`, `server c64`, or `server tls-full c64` outside keep-alive.
    pub fn label(&self) -> String {
        let mut l = self.server.clone();
        if !self.mode.is_empty() && self.mode != Mode::KeepAlive.name() {
            l = format!("{l} {}", self.mode);
        }
        match self.conns {
            Some(c) => format!("{l} c{c}"),
            None => l,
        }
    }
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

/// Splits a run's file stem, `SERVER-cCONNS-MODE-ROUND` or the older
/// `SERVER-MODE-ROUND`, into (server, conns, mode). Server names may hold '-'.
pub fn parse_stem(stem: &str) -> Option<(String, Option<u32>, String)> {
    let parts: Vec<&str> = stem.rsplitn(3, '-').collect();
    let [round, mode, rest] = parts[..] else {
        return None;
    };
    round.parse::<u32>().ok()?;
    let conns = rest.rsplit_once('-').and_then(|(server, c)| {
        let n = c.strip_prefix('c')?.parse::<u32>().ok()?;
        Some((server, n))
    });
    Some(match conns {
        Some((server, n)) => (server.to_owned(), Some(n), mode.to_owned()),
        None => (rest.to_owned(), None, mode.to_owned()),
    })
}

struct Sample {
    run: Run,
    stat: PerfStat,
    proc: Option<ProcWindow>,
}

/// The run files of `dir/runs`: `runs/MODE/*.json` with their connection
/// mode, and (older layout) `runs/*.json` as keep-alive.
fn run_files(runs: &Path) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    let mut files = Vec::new();
    let list = |dir: &Path| -> anyhow::Result<Vec<std::path::PathBuf>> {
        let mut v = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            v.push(entry?.path());
        }
        v.sort();
        Ok(v)
    };
    for path in list(runs)? {
        if path.is_dir() {
            let mode = path.file_name().unwrap_or_default().to_string_lossy();
            for file in list(&path)? {
                files.push((mode.clone().into_owned(), file));
            }
        } else {
            files.push((Mode::KeepAlive.name().to_owned(), path));
        }
    }
    Ok(files)
}

/// Where a connection mode sorts: the harness's order, unknown names last.
fn mode_rank(mode: &str) -> usize {
    Mode::ALL
        .iter()
        .position(|m| m.name() == mode)
        .unwrap_or(Mode::ALL.len())
}

/// Reads every run of `dir/runs` into one row per connection mode, server
/// and connection count.
pub fn collect(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let runs = dir.join("runs");
    // (connection mode, server, conns) -> loop -> samples
    type Key = (String, String, Option<u32>);
    let mut by: BTreeMap<Key, BTreeMap<String, Vec<Sample>>> = BTreeMap::new();
    for (conn_mode, path) in run_files(&runs)? {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some((server, conns, mode)) = parse_stem(&stem) else {
            continue;
        };
        let run: Run = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        let stat = std::fs::read_to_string(path.with_extension("perfstat"))
            .map(|t| parse_perfstat(&t))
            .unwrap_or_default();
        let proc = read_proc_window(&path.with_extension(""));
        by.entry((conn_mode, server, conns))
            .or_default()
            .entry(mode)
            .or_default()
            .push(Sample { run, stat, proc });
    }
    if by.is_empty() {
        bail!("no runs/*.json or runs/MODE/*.json in {}", dir.display());
    }
    let mut rows = Vec::new();
    for ((conn_mode, server, conns), modes) in by {
        let mut row = Row {
            server: server.clone(),
            mode: conn_mode,
            conns,
            ..Row::default()
        };
        for t in modes.values().flatten().filter_map(|x| x.run.tls.as_ref()) {
            row.handshakes += t.handshakes;
            row.resumed += t.resumed;
        }
        if let Some(closed) = modes.get("closed") {
            row.rounds = closed.len();
            row.rps_all = closed.iter().map(|x| x.run.rps).collect();
            row.rps = median(row.rps_all.clone()).unwrap_or(0.0);
            row.sat_p50 =
                median(closed.iter().map(|x| x.run.latency_us.p50).collect()).unwrap_or(0.0);
            row.sat_p99 =
                median(closed.iter().map(|x| x.run.latency_us.p99).collect()).unwrap_or(0.0);
            row.client_ns_per_req = median(
                closed
                    .iter()
                    .map(|x| x.run.client_cpu_ns_per_request)
                    .collect(),
            )
            .unwrap_or(0.0);
            // Requests in a window: the run's rate (over its own measured
            // window) times the server-side window.
            let per_req = |f: &dyn Fn(&Sample) -> Option<(f64, f64)>| {
                median(
                    closed
                        .iter()
                        .filter_map(|x| {
                            let (value, window_s) = f(x)?;
                            let n = x.run.rps * window_s;
                            (n > 0.0).then(|| value / n)
                        })
                        .collect(),
                )
            };
            let stat = |g: fn(&PerfStat) -> Option<f64>| {
                move |x: &Sample| g(&x.stat).map(|v| (v, x.stat.window_s))
            };
            row.cpu_us_per_req = per_req(&|x| x.proc.as_ref().map(|p| (p.cpu_s * 1e6, p.window_s)))
                .or_else(|| per_req(&stat(|s| s.task_clock_ms.map(|ms| ms * 1000.0))));
            row.instr_per_req = per_req(&stat(|s| s.instructions));
            row.cycles_per_req = per_req(&stat(|s| s.cycles));
            for (i, name) in IRQ_ROWS.iter().enumerate() {
                row.irq_per_req[i] = per_req(&|x| {
                    let p = x.proc.as_ref()?;
                    Some((p.irq.get(*name).copied().unwrap_or(0) as f64, p.window_s))
                });
            }
        }
        if let Some(open) = modes.get("open") {
            row.open_p50_all = open.iter().map(|x| x.run.latency_us.p50).collect();
            row.open_p99_all = open.iter().map(|x| x.run.latency_us.p99).collect();
            row.open_p50 = median(row.open_p50_all.clone());
            row.open_p99 = median(row.open_p99_all.clone());
            row.open_rate = median(open.iter().map(|x| x.run.rps).collect());
        }
        row.errors = modes
            .values()
            .flatten()
            .map(|x| {
                x.run
                    .errors
                    .as_object()
                    .map(|o| o.values().filter_map(|v| v.as_u64()).sum::<u64>())
                    .unwrap_or(0)
            })
            .sum();
        rows.push(row);
    }
    if let Ok(tsv) = std::fs::read_to_string(dir.join("instructions/instructions.tsv")) {
        for (server, per) in parse_instructions(&tsv) {
            // instructions.sh measures keep-alive connections only.
            for row in rows
                .iter_mut()
                .filter(|r| r.server == server && r.mode == Mode::KeepAlive.name())
            {
                row.vg_instr_per_req = Some(per);
            }
        }
    }
    // By connection mode and count, nginx first in each: it is the baseline
    // of every ratio.
    rows.sort_by_key(|r| {
        (
            mode_rank(&r.mode),
            r.mode.clone(),
            r.conns,
            r.server != "nginx",
            r.server.clone(),
        )
    });
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

fn ratio_of(v: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (v, b) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

fn ratio(v: Option<f64>, b: Option<f64>) -> String {
    ratio_of(v, b)
        .map(|r| format!(" (x{r:.2})"))
        .unwrap_or_default()
}

fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) => format!("{v:.digits$}"),
        None => "n/a".into(),
    }
}

/// The markdown table, then the issue's targets checked row by row.
pub fn table(rows: &[Row]) -> String {
    let base = |r: &Row| baseline(rows, r);
    let hw = rows.iter().any(|r| r.instr_per_req.is_some());
    let mut s = String::from(
        "| server | mode | conns | req/s at saturation | p50 / p99 us at saturation | p50 / p99 us at fixed rate | server CPU us/req | RES / CAL / TLB / all interrupts per request (server CPU) | user-space instructions/req (valgrind) |",
    );
    if hw {
        s += " instructions/req | cycles/req |";
    }
    s += " errors |\n|---|---|---|---|---|---|---|---|---|";
    if hw {
        s += "---|---|";
    }
    s += "---|\n";
    for r in rows {
        let b = base(r);
        let irq: Vec<String> = r.irq_per_req.iter().map(|v| num(*v, 3)).collect();
        s += &format!(
            "| {} | {} | {} | {:.0}{} | {:.0} / {:.0}{} | {} / {}{} | {}{} | {} | {}{} |",
            r.server,
            r.mode,
            r.conns.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            r.rps,
            ratio(Some(r.rps), b.map(|b| b.rps)),
            r.sat_p50,
            r.sat_p99,
            ratio(Some(r.sat_p99), b.map(|b| b.sat_p99)),
            num(r.open_p50, 0),
            num(r.open_p99, 0),
            ratio(r.open_p99, b.and_then(|b| b.open_p99)),
            num(r.cpu_us_per_req, 2),
            ratio(r.cpu_us_per_req, b.and_then(|b| b.cpu_us_per_req)),
            irq.join(" / "),
            num(r.vg_instr_per_req, 0),
            ratio(r.vg_instr_per_req, b.and_then(|b| b.vg_instr_per_req)),
        );
        if hw {
            s += &format!(
                " {}{} | {}{} |",
                num(r.instr_per_req, 0),
                ratio(r.instr_per_req, b.and_then(|b| b.instr_per_req)),
                num(r.cycles_per_req, 0),
                ratio(r.cycles_per_req, b.and_then(|b| b.cycles_per_req)),
            );
        }
        s += &format!(" {} |\n", r.errors);
    }
    // The fixed rate of each connection mode (the new-connection modes run
    // at lower rates than keep-alive).
    let mut rates: Vec<(&str, f64)> = Vec::new();
    for r in rows {
        let Some(rate) = r.open_rate else { continue };
        match rates.iter_mut().find(|(m, _)| *m == r.mode) {
            Some((_, max)) => *max = max.max(rate),
            None => rates.push((&r.mode, rate)),
        }
    }
    let fixed = match rates.as_slice() {
        [] => "No fixed-rate runs. ".to_owned(),
        [(_, rate)] => format!(
            "Fixed rate: open loop at ~{rate:.0} req/s, latency from the intended send time. "
        ),
        _ => format!(
            "Fixed rate: open loop at ~{} req/s, latency from the intended send time. ",
            rates
                .iter()
                .map(|(m, r)| format!("{r:.0} ({m})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    s += &format!(
        "\nMedians of {} rounds; (xN) is the ratio to nginx in the same mode at the same connection count (p99 ratios after the p99). \
         {fixed}\
         Server CPU: user + system time of the server process (/proc/PID/stat, every thread) over the measured window, \
         divided by the requests answered in it; interrupts: the server CPU's column of /proc/interrupts over the same window, \
         divided the same way (RES rescheduling, CAL function call, TLB shootdown IPIs; all: every row, timer included).\n",
        rows.first().map(|r| r.rounds).unwrap_or(0)
    );
    s += &targets(rows);
    s += &issue13(rows);
    s
}

/// nginx's row in `r`'s connection mode at `r`'s connection count.
fn baseline<'a>(rows: &'a [Row], r: &Row) -> Option<&'a Row> {
    rows.iter()
        .find(|b| b.server == "nginx" && b.conns == r.conns && b.mode == r.mode)
}

/// Issue 13's target for server CPU per request against nginx, per mode.
pub fn cpu_target(mode: &str) -> Option<f64> {
    Some(match mode.parse::<Mode>().ok()? {
        Mode::KeepAlive => 0.6,
        Mode::Close => 0.8,
        Mode::TlsKeepAlive => 0.6,
        Mode::TlsFull => 0.3,
        Mode::TlsResume => 0.5,
    })
}

/// Issue 13 (HTTPS at the edge): server CPU per request against nginx in
/// each connection mode, and, in the TLS modes, the share of handshakes
/// the server resumed (tls-resume must be near 100%, the others 0%).
fn issue13(rows: &[Row]) -> String {
    let mut s = String::from(
        "\n| issue 13 | mode | conns | server CPU us/req | nginx | ratio | target | met | TLS handshakes resumed |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut any = false;
    for r in rows.iter().filter(|r| r.server != "nginx") {
        let (Some(b), Some(target)) = (baseline(rows, r), cpu_target(&r.mode)) else {
            continue;
        };
        any = true;
        let ratio = ratio_of(r.cpu_us_per_req, b.cpu_us_per_req);
        let resumed = if r.handshakes > 0 {
            format!(
                "{} of {} ({:.1}%)",
                r.resumed,
                r.handshakes,
                r.resumed as f64 * 100.0 / r.handshakes as f64
            )
        } else {
            "-".into()
        };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | <= x{target:.1} | {} | {resumed} |\n",
            r.server,
            r.mode,
            r.conns.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            num(r.cpu_us_per_req, 2),
            num(b.cpu_us_per_req, 2),
            ratio
                .map(|v| format!("x{v:.2}"))
                .unwrap_or_else(|| "n/a".into()),
            match ratio {
                Some(v) if v <= target => "yes",
                Some(_) => "NO",
                None => "n/a",
            },
        );
    }
    if any { s } else { String::new() }
}

/// The first issue's targets for every server but nginx on keep-alive
/// connections, against nginx at the same connection count: throughput >=
/// 1.4x, p99 <= 1.0x (at saturation and at the fixed rate), CPU per request
/// and user-space instructions per request <= 0.7x.
fn targets(rows: &[Row]) -> String {
    let check = |v: Option<f64>, ok: bool| match v {
        Some(v) => format!("x{v:.2} {}", if ok { "yes" } else { "NO" }),
        None => "n/a".into(),
    };
    let mut s = String::from(
        "\n| targets vs nginx | conns | req/s >= x1.40 | p99 at saturation <= x1.00 | p99 at fixed rate <= x1.00 | server CPU/req <= x0.70 | instructions/req (valgrind) <= x0.70 |\n|---|---|---|---|---|---|---|\n",
    );
    let mut any = false;
    let keepalive = |r: &&Row| r.mode.is_empty() || r.mode == Mode::KeepAlive.name();
    for r in rows
        .iter()
        .filter(|r| r.server != "nginx")
        .filter(keepalive)
    {
        let Some(b) = baseline(rows, r) else {
            continue;
        };
        any = true;
        let rps = ratio_of(Some(r.rps), Some(b.rps));
        let p99 = ratio_of(Some(r.sat_p99), Some(b.sat_p99));
        let open = ratio_of(r.open_p99, b.open_p99);
        let cpu = ratio_of(r.cpu_us_per_req, b.cpu_us_per_req);
        let vg = ratio_of(r.vg_instr_per_req, b.vg_instr_per_req);
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.server,
            r.conns.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            check(rps, rps.is_some_and(|v| v >= 1.4)),
            check(p99, p99.is_some_and(|v| v <= 1.0)),
            check(open, open.is_some_and(|v| v <= 1.0)),
            check(cpu, cpu.is_some_and(|v| v <= 0.7)),
            check(vg, vg.is_some_and(|v| v <= 0.7)),
        );
    }
    if any { s } else { String::new() }
}

/// Reads `dir`, writes `summary.md`, `plot.svg` and `plot-MODE.svg` there,
/// returns the table.
pub fn summarize(dir: &Path) -> anyhow::Result<String> {
    let rows = collect(dir)?;
    let mut t = table(&rows);
    if let Ok(notes) = std::fs::read_to_string(dir.join("notes.txt"))
        && !notes.trim().is_empty()
    {
        t += &format!("\nNotes from the run:\n\n{notes}");
    }
    std::fs::write(dir.join("summary.md"), &t)?;
    // One plot per connection mode: their rates differ by orders of magnitude.
    let mut modes: Vec<&str> = rows.iter().map(|r| r.mode.as_str()).collect();
    modes.dedup();
    for mode in modes {
        let of_mode: Vec<Row> = rows.iter().filter(|r| r.mode == mode).cloned().collect();
        let name = if mode == Mode::KeepAlive.name() {
            "plot.svg".to_owned()
        } else {
            format!("plot-{mode}.svg")
        };
        std::fs::write(dir.join(name), crate::svg::plot(&of_mode))?;
    }
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
    fn run_names_with_and_without_connection_counts() {
        let p = |s: &str| parse_stem(s);
        assert_eq!(
            p("engine-uring-c256-closed-3"),
            Some(("engine-uring".into(), Some(256), "closed".into()))
        );
        assert_eq!(
            p("nginx-c64-open-1"),
            Some(("nginx".into(), Some(64), "open".into()))
        );
        assert_eq!(
            p("engine-closed-2"),
            Some(("engine".into(), None, "closed".into()))
        );
        assert_eq!(
            p("engine-glommio-open-2"),
            Some(("engine-glommio".into(), None, "open".into()))
        );
        assert_eq!(p("closed-2"), None);
        assert_eq!(p("a-b-x"), None);
    }

    #[test]
    fn stat_line_cpu_ticks() {
        // comm with a space and a parenthesis; utime 1500, stime 250.
        let line = "1234 (engine (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 1500 250 0 0 20 0 3 0 12345 0 0";
        assert_eq!(stat_ticks(line), Some(1750));
        assert_eq!(stat_ticks("garbage"), None);
    }

    const IRQ_BEFORE: &str = "           CPU0       CPU1       \n 36:          0      67754 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0\nLOC:      84245      74180   Local timer interrupts\nRES:      14072       9814   Rescheduling interrupts\nCAL:      83903      67736   Function call interrupts\nTLB:      10162       9481   TLB shootdowns\nERR:          0\nMIS:          0\n";
    const IRQ_AFTER: &str = "           CPU0       CPU1       \n 36:          2      67800 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0\nLOC:      84745      74680   Local timer interrupts\nRES:      14172       9914   Rescheduling interrupts\nCAL:      83913      67736   Function call interrupts\nTLB:      10163       9481   TLB shootdowns\nERR:          7\nMIS:          0\n";

    #[test]
    fn interrupt_columns() {
        let cpu0 = parse_interrupts(IRQ_BEFORE, 0).unwrap();
        assert_eq!(cpu0["RES"], 14072);
        assert_eq!(cpu0["36"], 0);
        assert!(!cpu0.contains_key("ERR"));
        assert_eq!(cpu0["total"], 84245 + 14072 + 83903 + 10162);
        let cpu1 = parse_interrupts(IRQ_BEFORE, 1).unwrap();
        assert_eq!(cpu1["36"], 67754);
        assert_eq!(parse_interrupts(IRQ_BEFORE, 2), None);
    }

    #[test]
    fn proc_window_and_per_request_figures() {
        let dir = std::env::temp_dir().join(format!("perf-summary-test-{}", std::process::id()));
        let runs = dir.join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        let stat = |u: u64, s: u64| {
            format!("99 (nginx) S 1 99 99 0 -1 0 0 0 0 0 {u} {s} 0 0 20 0 1 0 5 0 0")
        };
        for (server, rps, ticks) in [("nginx", 1000.0, 40), ("engine-uring", 2000.0, 20)] {
            for mode in ["closed", "open"] {
                let base = runs.join(format!("{server}-c64-{mode}-1"));
                let json = format!(
                    r#"{{"rps":{rps},"latency_us":{{"p50":10,"p99":100}},"errors":{{"read":0}},"client_cpu_ns_per_request":5000}}"#
                );
                std::fs::write(base.with_extension("json"), json).unwrap();
                let proc = format!(
                    "window_ns=2000000000\nclk_tck=100\nserver_cpu=0\nstat_before={}\nstat_after={}\n",
                    stat(100, 10),
                    stat(100 + ticks, 10)
                );
                std::fs::write(base.with_extension("proc"), proc).unwrap();
                let mut p = base.as_os_str().to_owned();
                p.push(".irq.before");
                std::fs::write(&p, IRQ_BEFORE).unwrap();
                let mut p = base.as_os_str().to_owned();
                p.push(".irq.after");
                std::fs::write(&p, IRQ_AFTER).unwrap();
            }
        }
        let rows = collect(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows[0].server, "nginx");
        assert_eq!(rows[1].server, "engine-uring");
        // nginx: 0.4 s of CPU over 2 s at 1000 req/s = 200 us per request.
        assert!((rows[0].cpu_us_per_req.unwrap() - 200.0).abs() < 1e-9);
        assert!((rows[1].cpu_us_per_req.unwrap() - 50.0).abs() < 1e-9);
        // 100 RES over 2000 requests; total = 2 + 500 + 100 + 10 + 1.
        assert!((rows[0].irq_per_req[0].unwrap() - 0.05).abs() < 1e-12);
        assert!((rows[0].irq_per_req[3].unwrap() - 613.0 / 2000.0).abs() < 1e-12);
        let t = table(&rows);
        assert!(
            t.contains("| engine-uring | keepalive | 64 | 2000 (x2.00) |"),
            "{t}"
        );
        assert!(t.contains("50.00 (x0.25)"), "{t}");
        assert!(
            t.contains(
                "| engine-uring | 64 | x2.00 yes | x1.00 yes | x1.00 yes | x0.25 yes | n/a |"
            ),
            "{t}"
        );
    }

    #[test]
    fn connection_modes_are_compared_with_nginx_in_the_same_mode() {
        let dir = std::env::temp_dir().join(format!("perf-summary-modes-{}", std::process::id()));
        // Keep-alive runs in the older layout (directly in runs/), the TLS
        // modes in runs/MODE/.
        let runs = dir.join("runs");
        std::fs::create_dir_all(runs.join("tls-full")).unwrap();
        std::fs::create_dir_all(runs.join("tls-resume")).unwrap();
        let stat = |u: u64| format!("9 (x) S 1 9 9 0 -1 0 0 0 0 0 {u} 0 0 0 20 0 1 0 5 0 0");
        let write = |sub: &str, server: &str, rps: f64, ticks: u64, tls: &str| {
            let base = runs.join(sub).join(format!("{server}-c64-closed-1"));
            let json = format!(
                r#"{{"rps":{rps},"latency_us":{{"p50":10,"p99":100}},"errors":{{"tls":0}},"client_cpu_ns_per_request":5000{tls}}}"#
            );
            std::fs::write(base.with_extension("json"), json).unwrap();
            let proc = format!(
                "window_ns=1000000000\nclk_tck=100\nserver_cpu=0\nstat_before={}\nstat_after={}\n",
                stat(0),
                stat(ticks)
            );
            std::fs::write(base.with_extension("proc"), proc).unwrap();
            for ext in [".irq.before", ".irq.after"] {
                let mut p = base.as_os_str().to_owned();
                p.push(ext);
                std::fs::write(&p, IRQ_BEFORE).unwrap();
            }
        };
        write("", "nginx", 10_000.0, 20, "");
        write("", "engine", 20_000.0, 20, "");
        // 1 s of CPU over 1 s at 1000 req/s: 1000 us per request.
        write(
            "tls-full",
            "nginx",
            1000.0,
            100,
            r#","tls":{"handshakes":1000,"resumed":0}"#,
        );
        write(
            "tls-full",
            "engine",
            2000.0,
            50,
            r#","tls":{"handshakes":2000,"resumed":0}"#,
        );
        write(
            "tls-resume",
            "nginx",
            1000.0,
            50,
            r#","tls":{"handshakes":1000,"resumed":990}"#,
        );
        write(
            "tls-resume",
            "engine",
            1000.0,
            30,
            r#","tls":{"handshakes":1000,"resumed":998}"#,
        );
        std::fs::write(dir.join("notes.txt"), "engine: no --tls-listen\n").unwrap();
        let t = summarize(&dir).unwrap();
        assert!(dir.join("plot.svg").exists() && dir.join("plot-tls-full.svg").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        // Keep-alive first, then the modes in the harness's order.
        let first = |needle: &str| t.find(needle).unwrap_or_else(|| panic!("{needle}: {t}"));
        assert!(first("| nginx | keepalive |") < first("| nginx | tls-full |"));
        assert!(first("| engine | tls-full |") < first("| nginx | tls-resume |"));
        // Ratios against nginx in the same mode: 250 / 1000 us.
        assert!(
            t.contains("| engine | tls-full | 64 | 2000 (x2.00) |"),
            "{t}"
        );
        assert!(
            t.contains("| engine | tls-full | 64 | 250.00 | 1000.00 | x0.25 | <= x0.3 | yes | 0 of 2000 (0.0%) |"),
            "{t}"
        );
        assert!(
            t.contains("| engine | tls-resume | 64 | 300.00 | 500.00 | x0.60 | <= x0.5 | NO | 998 of 1000 (99.8%) |"),
            "{t}"
        );
        assert!(
            t.contains("| engine | keepalive | 64 | 10.00 | 20.00 | x0.50 | <= x0.6 | yes | - |"),
            "{t}"
        );
        // The first issue's targets are for keep-alive rows only.
        assert!(t.contains("| engine | 64 | x2.00 yes |"), "{t}");
        assert!(
            !t.contains("| engine | 64 | x2.00 yes | x1.00 yes | n/a | x0.25"),
            "{t}"
        );
        assert!(t.ends_with("engine: no --tls-listen\n"), "{t}");
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
        assert!(t.contains("| engine |  | - | 250 (x2.50) |"), "{t}");
        assert!(t.contains("4.00 (x0.40)"), "{t}");
    }
}
