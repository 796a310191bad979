//! Shared set-up for the criterion benchmarks in `benches/`.
//!
//! Link sets are generated from a fixed seed so every run (and every machine)
//! measures the same keys: 7-character base62 codes, as the control plane
//! issues them, and targets of 40 to 120 bytes.
//!
//! [`tls`] joins a rustls client and server over byte buffers for the TLS
//! handshake and keep-alive benchmarks (`benches/tls.rs`) and the
//! instruction counts under callgrind (`src/bin/tls-instructions.rs`).

pub mod tls;

use snapshots::{Link, SnapshotBuilder};
use std::path::Path;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A base62 code of `len` characters.
    pub fn code(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| BASE62[(self.next_u64() % 62) as usize] as char)
            .collect()
    }
}

/// `n` distinct codes (seeded), 7 characters each.
pub fn codes(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let code = rng.code(7);
        if seen.insert(code.clone()) {
            out.push(code);
        }
    }
    out
}

/// The target for the `i`-th link: 40 to 120 bytes.
pub fn target(i: usize) -> String {
    let pad = 20 + (i * 7919) % 80;
    format!("https://example.com/{i}/{}", "p".repeat(pad))
}

/// Writes a snapshot of the given codes to `path`.
pub fn build_snapshot(path: &Path, codes: &[String]) -> snapshots::BuildSummary {
    let mut builder = SnapshotBuilder::with_capacity(1, codes.len());
    for (i, code) in codes.iter().enumerate() {
        builder
            .push(Link::new(code.clone(), target(i)))
            .expect("generated links are valid");
    }
    builder.write_to(path).expect("snapshot builds")
}
