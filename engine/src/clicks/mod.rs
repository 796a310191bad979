//! Click capture: every redirect (and every 404/410) becomes a record in the
//! core's own batch; full or aged batches go to one publisher thread.
//!
//! - [`ClickBuffer`] (one per core): appends with
//!   `snapshots::click::ClickBatchWriter` into a buffer it reuses; a batch is
//!   handed over when it holds `click_batch_events` events, nears the NATS
//!   payload limit, or is `click_batch_age_ms` old (checked on the core's
//!   clock tick). Handing over is a `try_send` on a bounded crossbeam
//!   channel ([`handoff`]: it rings the publisher's doorbell if it sleeps),
//!   taking a recycled buffer back from the publisher: the request path
//!   never blocks and, in steady state, never allocates. A full channel
//!   drops the batch and counts its events (`engine_clicks_dropped_total`).
//! - [`publisher`]: one thread with its own tokio runtime and async-nats
//!   client; publishes each batch to JetStream `CLICKS` on `clicks.<node>`
//!   with the hex batch id as `Nats-Msg-Id` (a retried publish is stored
//!   once), acks pipelined a window at a time. When NATS is slow or down,
//!   batches go to the [`spool`] on disk, replayed in order when it is back.
//! - [`client_ip`]: the client address, through trusted proxies only.
//!
//! Ids: a random 64-bit prefix drawn at process start, then the core and a
//! per-core counter. Two processes (other nodes, or this one restarted) share
//! a prefix with probability 2^-64 per pair, so event ids are unique across
//! nodes and restarts without coordination.

pub mod client_ip;
pub mod handoff;
pub mod publisher;
pub mod spool;

use crate::metrics::CoreMetrics;
use crossbeam_channel::{Receiver, TrySendError};
use handoff::BatchSender;
use snapshots::click::{ClickBatchWriter, ClickEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Batches stay below NATS's default 1 MiB payload limit with room for one
/// more maximal record (every field at its cap is about 2 KiB).
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Counters of the publisher thread (its single writer) read by the admin port.
#[derive(Debug, Default)]
pub struct ClickStats {
    pub batches_published: AtomicU64,
    pub events_published: AtomicU64,
    pub events_spooled: AtomicU64,
    pub events_replayed: AtomicU64,
    /// Dropped because the spool was full.
    pub events_dropped: AtomicU64,
    pub publish_failures: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_batches: AtomicU64,
    pub publish_latency_us_sum: AtomicU64,
    pub publish_latency_count: AtomicU64,
    pub connected: AtomicU64,
    /// Spool files set aside as unreadable.
    pub spool_quarantined: AtomicU64,
    /// The `CLICKS` stream as the publisher last found it.
    pub stream: crate::streams::StreamWatch,
}

/// One core's batch under construction.
pub struct ClickBuffer {
    writer: ClickBatchWriter,
    /// Unix ms when the current batch got its first event; 0 when empty.
    opened_ms: u64,
    prefix: [u8; 8],
    core: u8,
    next_event: u64,
    next_batch: u64,
    max_events: u32,
    max_age_ms: u64,
    capacity: usize,
    batches: BatchSender,
    recycled: Receiver<Vec<u8>>,
    metrics: Arc<CoreMetrics>,
}

impl ClickBuffer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node_id: &str,
        prefix: [u8; 8],
        core: usize,
        max_events: u32,
        max_age_ms: u64,
        batches: BatchSender,
        recycled: Receiver<Vec<u8>>,
        metrics: Arc<CoreMetrics>,
    ) -> ClickBuffer {
        // Room for a typical batch (~200 bytes an event) without growing.
        let capacity = (max_events as usize * 256).min(MAX_BATCH_BYTES + 4096);
        ClickBuffer {
            writer: ClickBatchWriter::new(node_id, capacity),
            opened_ms: 0,
            prefix,
            core: core as u8,
            next_event: 0,
            next_batch: 0,
            max_events,
            max_age_ms,
            capacity,
            batches,
            recycled,
            metrics,
        }
    }

    fn id(&self, kind: u8, counter: u64) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.prefix);
        id[8] = self.core;
        id[9] = kind;
        id[10..].copy_from_slice(&counter.to_be_bytes()[2..]);
        id
    }

    /// Appends one click; hands the batch over when it is full. The buffer
    /// names the event (its id); `describe` fills in the rest from the
    /// request, borrowing its bytes.
    #[inline]
    pub fn record<'a>(&mut self, describe: impl FnOnce([u8; 16]) -> ClickEvent<'a>) {
        let event = describe(self.id(b'E', self.next_event));
        self.next_event += 1;
        if self.opened_ms == 0 {
            let batch_id = self.id(b'B', self.next_batch);
            self.next_batch += 1;
            self.writer.begin(batch_id);
            self.opened_ms = event.ts_ms.max(1);
        }
        self.writer.push(&event);
        self.metrics.clicks_captured.inc();
        if self.writer.count() >= self.max_events || self.writer.byte_len() >= MAX_BATCH_BYTES {
            self.flush();
        }
    }

    /// Hands over the batch if it is older than the age limit.
    pub fn tick(&mut self, now_ms: u64) {
        if self.opened_ms != 0 && now_ms.saturating_sub(self.opened_ms) >= self.max_age_ms {
            self.flush();
        }
    }

    /// Hands the current batch to the publisher (never blocks).
    pub fn flush(&mut self) {
        if self.opened_ms == 0 {
            return;
        }
        let events = u64::from(self.writer.count());
        let replacement = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.capacity));
        let batch = self.writer.take(replacement);
        self.opened_ms = 0;
        match self.batches.try_send(batch) {
            Ok(()) => self.metrics.click_batches_sent.inc(),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.clicks_dropped.add(events);
            }
        }
    }
}

/// The random per-process id prefix.
pub fn process_prefix() -> [u8; 8] {
    let mut prefix = [0u8; 8];
    if getrandom::fill(&mut prefix).is_err() {
        // No entropy source: time and pid still differ across restarts.
        let now = crate::clock::unix_ms();
        prefix = (now ^ (u64::from(std::process::id()) << 40)).to_be_bytes();
    }
    prefix
}

/// A node id usable as a NATS subject token: the configured one, else the
/// host name, with anything outside `[A-Za-z0-9_-]` replaced by `_`.
pub fn node_id(configured: Option<&str>) -> String {
    let raw = match configured {
        Some(id) => id.to_owned(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
    };
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(snapshots::click::MAX_NODE_ID_LEN)
        .collect();
    if cleaned.is_empty() {
        "engine".to_owned()
    } else {
        cleaned
    }
}

pub(crate) fn relaxed_add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}
