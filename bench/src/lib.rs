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

/// The perf lab's seeded generator (SplitMix64), one implementation for both.
pub use perf::rng::Rng;

/// A base62 code of `len` characters drawn from `rng`.
pub fn code(rng: &mut Rng, len: usize) -> String {
    (0..len).map(|_| BASE62[rng.below(62)] as char).collect()
}

/// `n` distinct codes (seeded), 7 characters each.
pub fn codes(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let code = code(&mut rng, 7);
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
    build_snapshot_signed(path, codes, None)
}

/// [`build_snapshot`], signed by `signer` when given (`snapshots::signed`).
pub fn build_snapshot_signed(
    path: &Path,
    codes: &[String],
    signer: Option<std::sync::Arc<snapshots::signing::DeltaSigner>>,
) -> snapshots::BuildSummary {
    let mut builder = SnapshotBuilder::with_capacity(1, codes.len());
    if let Some(signer) = signer {
        builder = builder.signed_by(signer);
    }
    for (i, code) in codes.iter().enumerate() {
        builder
            .push(Link::new(code.clone(), target(i)))
            .expect("generated links are valid");
    }
    builder.write_to(path).expect("snapshot builds")
}
