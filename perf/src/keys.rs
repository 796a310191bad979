//! The request sequence: which codes are asked for, in what order, encoded
//! once before the run.
//!
//! A run never formats a request: [`Workload::build`] samples `len` codes
//! from the chosen [`Distribution`] and writes each as a complete
//! `GET /CODE HTTP/1.1` request into one buffer, with the status expected
//! back (the known-code status, or 404 for the share of unknown codes).
//! Connections walk this sequence from different offsets.

use crate::rng::Rng;
use crate::zipf::Zipf;
use anyhow::{Context, bail};
use std::collections::HashSet;
use std::path::Path;

/// How codes are drawn from the list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    Uniform,
    /// Zipf with this exponent over a seeded shuffle of the list, so the hot
    /// codes are not the first lines of the file.
    Zipf(f64),
}

impl std::str::FromStr for Distribution {
    type Err = anyhow::Error;
    /// `uniform`, `zipf` (s = 1.0) or `zipf:S`.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "uniform" => Ok(Distribution::Uniform),
            "zipf" => Ok(Distribution::Zipf(1.0)),
            _ => match s.strip_prefix("zipf:").map(str::parse::<f64>) {
                Some(Ok(e)) if e >= 0.0 && e.is_finite() => Ok(Distribution::Zipf(e)),
                _ => bail!("distribution {s:?}: expected uniform, zipf or zipf:EXPONENT (>= 0)"),
            },
        }
    }
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Distribution::Uniform => write!(f, "uniform"),
            Distribution::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// Reads the codes of a snapshot file (detected by its magic) or of a text
/// file: one code per line, or CSV whose first column is the code; a
/// `code` header line, blank lines and `#` comments are skipped.
pub fn load_codes(path: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(&snapshots::header::MAGIC) {
        let snap = snapshots::Snapshot::from_bytes(&bytes)
            .with_context(|| format!("opening snapshot {}", path.display()))?;
        return Ok(snap.iter().map(|(code, _)| code.to_owned()).collect());
    }
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{} is neither a snapshot nor UTF-8 text", path.display()))?;
    let mut codes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("code")) {
            continue;
        }
        let code = line.split(',').next().unwrap_or("").trim();
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
            bail!("{}:{}: {code:?} is not a code", path.display(), i + 1);
        }
        codes.push(code.to_owned());
    }
    if codes.is_empty() {
        bail!("{} holds no codes", path.display());
    }
    Ok(codes)
}

/// What to build.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub distribution: Distribution,
    /// Share of requests for codes that are not in the list, 0..=1.
    pub unknown_share: f64,
    /// Status expected for a known code (301 for the default snapshot).
    pub known_status: u16,
    /// Status expected for an unknown code.
    pub unknown_status: u16,
    /// Requests in the sequence before it repeats.
    pub len: usize,
    pub seed: u64,
    /// `Host` header value.
    pub host: String,
    /// Every request says `Connection: close` (the new-connection modes).
    pub connection_close: bool,
}

/// Ready-to-send requests: request `i` is `bytes[offsets[i]..offsets[i+1]]`
/// and must be answered with `expect[i]`.
#[derive(Debug, Clone)]
pub struct Workload {
    pub bytes: Vec<u8>,
    pub offsets: Vec<u32>,
    pub expect: Vec<u16>,
}

impl Workload {
    pub fn build(codes: &[String], spec: &WorkloadSpec) -> anyhow::Result<Workload> {
        if codes.is_empty() || spec.len == 0 {
            bail!("need at least one code and a sequence length above 0");
        }
        if !(0.0..=1.0).contains(&spec.unknown_share) {
            bail!("unknown share {} is not within 0..=1", spec.unknown_share);
        }
        let mut rng = Rng::new(spec.seed);
        let mut order: Vec<&str> = codes.iter().map(String::as_str).collect();
        rng.shuffle(&mut order);
        let zipf = match spec.distribution {
            Distribution::Zipf(s) => Some(Zipf::new(order.len(), s)),
            Distribution::Uniform => None,
        };
        let unknown = if spec.unknown_share > 0.0 {
            unknown_codes(codes, 1024.min(spec.len), &mut rng)
        } else {
            Vec::new()
        };

        let mut w = Workload {
            bytes: Vec::with_capacity(spec.len * (60 + spec.host.len())),
            offsets: Vec::with_capacity(spec.len + 1),
            expect: Vec::with_capacity(spec.len),
        };
        w.offsets.push(0);
        for _ in 0..spec.len {
            let (code, status) = if !unknown.is_empty() && rng.unit() < spec.unknown_share {
                (
                    unknown[rng.below(unknown.len())].as_str(),
                    spec.unknown_status,
                )
            } else {
                let i = match &zipf {
                    Some(z) => z.sample(&mut rng),
                    None => rng.below(order.len()),
                };
                (order[i], spec.known_status)
            };
            w.bytes.extend_from_slice(b"GET /");
            w.bytes.extend_from_slice(code.as_bytes());
            w.bytes.extend_from_slice(b" HTTP/1.1\r\nHost: ");
            w.bytes.extend_from_slice(spec.host.as_bytes());
            if spec.connection_close {
                w.bytes.extend_from_slice(b"\r\nConnection: close");
            }
            w.bytes.extend_from_slice(b"\r\n\r\n");
            let end = u32::try_from(w.bytes.len()).context("request sequence above 4 GiB")?;
            w.offsets.push(end);
            w.expect.push(status);
        }
        Ok(w)
    }

    pub fn len(&self) -> usize {
        self.expect.len()
    }

    pub fn is_empty(&self) -> bool {
        self.expect.is_empty()
    }

    pub fn request(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

/// `n` random 7-character base62 codes absent from `codes`, compared
/// case-insensitively (nginx's map is), so they are unknown to every server.
fn unknown_codes(codes: &[String], n: usize, rng: &mut Rng) -> Vec<String> {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let known: HashSet<String> = codes.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let code: String = (0..7).map(|_| BASE62[rng.below(62)] as char).collect();
        if !known.contains(&code.to_ascii_lowercase()) {
            out.push(code);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(distribution: Distribution, unknown_share: f64) -> WorkloadSpec {
        WorkloadSpec {
            distribution,
            unknown_share,
            known_status: 301,
            unknown_status: 404,
            len: 20_000,
            seed: 5,
            host: "127.0.0.1:1".into(),
            connection_close: false,
        }
    }

    #[test]
    fn requests_are_complete_and_expectations_match_the_codes() {
        let codes: Vec<String> = (0..100).map(|i| format!("c{i:05}")).collect();
        let w = Workload::build(&codes, &spec(Distribution::Uniform, 0.25)).unwrap();
        assert_eq!(w.len(), 20_000);
        let mut unknown = 0;
        for i in 0..w.len() {
            let req = std::str::from_utf8(w.request(i)).unwrap();
            assert!(
                req.starts_with("GET /") && req.ends_with(" HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
            );
            let code = &req[5..5 + req[5..].find(' ').unwrap()];
            let known = codes.iter().any(|c| c == code);
            assert_eq!(w.expect[i], if known { 301 } else { 404 }, "{code}");
            unknown += usize::from(!known);
        }
        let share = unknown as f64 / w.len() as f64;
        assert!((share - 0.25).abs() < 0.02, "unknown share {share}");
    }

    #[test]
    fn new_connection_requests_say_connection_close() {
        let codes = vec!["abc".to_owned()];
        let mut s = spec(Distribution::Uniform, 0.0);
        s.connection_close = true;
        s.host = "perf.test".into();
        let w = Workload::build(&codes, &s).unwrap();
        assert_eq!(
            w.request(0),
            b"GET /abc HTTP/1.1\r\nHost: perf.test\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn zipf_concentrates_on_few_codes() {
        let codes: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
        let w = Workload::build(&codes, &spec(Distribution::Zipf(1.2), 0.0)).unwrap();
        let mut counts = std::collections::HashMap::new();
        for i in 0..w.len() {
            *counts.entry(w.request(i).to_vec()).or_insert(0u32) += 1;
        }
        let max = *counts.values().max().unwrap() as f64 / w.len() as f64;
        // s = 1.2 over 10k ranks: the top code gets ~ 1/zeta-ish ~ 20%.
        assert!(max > 0.15, "top share {max}");
        assert!(counts.len() < 5_000, "{} distinct", counts.len());
    }

    #[test]
    fn reads_the_codes_of_a_snapshot() {
        let dir = std::env::temp_dir().join(format!("perf-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("links.snap");
        let mut builder = snapshots::SnapshotBuilder::with_capacity(1, 3);
        for code in ["abc1234", "Zz9", "q"] {
            builder
                .push(snapshots::Link::new(
                    code,
                    format!("https://example.com/{code}"),
                ))
                .unwrap();
        }
        builder.write_to(&path).unwrap();
        let mut codes = load_codes(&path).unwrap();
        codes.sort();
        assert_eq!(codes, ["Zz9", "abc1234", "q"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parses_distributions_and_code_files() {
        assert_eq!(
            "zipf:0.9".parse::<Distribution>().unwrap(),
            Distribution::Zipf(0.9)
        );
        assert!("zipf:-1".parse::<Distribution>().is_err());
        assert!("pareto".parse::<Distribution>().is_err());
        let dir = std::env::temp_dir().join(format!("perf-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("links.csv");
        std::fs::write(
            &csv,
            "code,target\nabc,https://a.example/\n\nxyz,https://b.example/\n",
        )
        .unwrap();
        assert_eq!(load_codes(&csv).unwrap(), ["abc", "xyz"]);
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "ok\nno/slash\n").unwrap();
        assert!(load_codes(&bad).unwrap_err().to_string().contains(":2:"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
