//! Counters each core writes and the admin thread reads.
//!
//! Every [`CoreMetrics`] has exactly one writer, its core, so an increment is
//! a relaxed load and a relaxed store (no locked read-modify-write, no
//! contention); the admin thread's relaxed loads may see a value a moment old,
//! which is all Prometheus needs. Each core's block is cache-line aligned so
//! two cores never write the same line.

use crate::http::response::STATUSES;
use crate::tls::conn::HandshakeFailure;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A monotonic counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning core may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down, single writer.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed);
    }

    #[inline]
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Upper bounds (microseconds) of the latency histogram's buckets; one more
/// bucket counts everything above the last.
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 2_000_000,
];

/// One core's counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CoreMetrics {
    /// Responses by status, indexed like [`STATUSES`].
    pub responses: [Counter; STATUSES.len()],
    pub connections_open: Gauge,
    pub connections_accepted: Counter,
    /// Closed on accept because the core was at its connection limit.
    pub connections_refused: Counter,
    /// Heads refused as malformed or too large (400, 414, 431).
    pub parse_errors: Counter,
    /// Connections cut off for sending a head too slowly (408).
    pub header_timeouts: Counter,
    /// New connections closed for sending nothing by their first-byte
    /// deadline.
    pub first_byte_timeouts: Counter,
    /// Requests for a code that does not exist (404, not a click).
    pub unknown_codes: Counter,
    /// Requests whose `Host` names no served domain (404).
    pub unknown_hosts: Counter,
    /// Visits to a link with a country rule while the engine has no GeoIP
    /// database (the rule could not match).
    pub rules_without_geoip: Counter,
    /// Visits of links with `max_visits` answered as exhausted because this
    /// core had none of their leased visits left.
    pub visits_exhausted: Counter,
    /// Request latency from the read that completed it to the written answer.
    pub latency_buckets: [Counter; LATENCY_BOUNDS_US.len() + 1],
    pub latency_sum_ns: Counter,
    /// Sequence of the snapshot this core serves; -1 before the first.
    pub snapshot_sequence: Gauge,
    /// Entries (upserts and tombstones) in this core's delta map.
    pub delta_entries: Gauge,
    /// Highest delta sequence this core has applied.
    pub delta_applied_seq: Gauge,
    /// Click events recorded into the core's batch.
    pub clicks_captured: Counter,
    /// Click events dropped because the publisher's channel was full.
    pub clicks_dropped: Counter,
    /// Click batches handed to the publisher.
    pub click_batches_sent: Counter,
    /// TLS handshakes completed: full, resumed.
    pub tls_handshakes: [Counter; 2],
    /// TLS handshakes failed, indexed like [`HandshakeFailure::ALL`].
    pub tls_handshake_failures: [Counter; HandshakeFailure::ALL.len()],
}

impl CoreMetrics {
    pub fn new() -> CoreMetrics {
        let metrics = CoreMetrics::default();
        metrics.snapshot_sequence.set(-1);
        metrics
    }

    /// Records `count` requests answered `elapsed_ns` after their last byte came in.
    #[inline]
    pub fn observe_latency(&self, elapsed_ns: u64, count: u64) {
        let us = elapsed_ns / 1000;
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.latency_buckets[bucket].add(count);
        self.latency_sum_ns.add(elapsed_ns * count);
    }
}
