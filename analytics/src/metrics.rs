//! Counters and the Prometheus text endpoint (`GET /metrics`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::{Router, extract::State, routing::get};

/// Upper bounds (seconds) of the insert-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Everything the sidecar counts. Shared by the consumer task and the HTTP handler.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages the consumer has not been delivered yet (`num_pending`).
    pub consumer_pending: AtomicU64,
    /// Messages delivered but not acknowledged yet (`num_ack_pending`).
    pub consumer_ack_pending: AtomicU64,
    pub rows_inserted: AtomicU64,
    /// Events skipped because `clicks` (or the same group) already had them.
    pub duplicates_skipped: AtomicU64,
    pub batches_acked: AtomicU64,
    /// Batches tried again because ClickHouse was unavailable (one per batch per retry).
    pub batches_retried: AtomicU64,
    /// Batches parked: undecodable, naming another node than their subject,
    /// or refused by ClickHouse too often.
    pub batches_parked: AtomicU64,
    /// Batches parked because they name another node than their subject
    /// (`crate::attribution`); counted in `batches_parked` too.
    pub batches_wrong_node: AtomicU64,
    /// Tries in which ClickHouse refused one batch on its own.
    pub batches_refused: AtomicU64,
    /// Messages seen with a delivery count above 1.
    pub batches_redelivered: AtomicU64,
    pub ua_cache_hits: AtomicU64,
    pub ua_cache_misses: AtomicU64,
    /// Failed attempts to set up the stream/consumer or read from it.
    pub nats_errors: AtomicU64,
    /// Clicks published on the enriched-click subjects (`crate::publish`).
    pub enriched_published: AtomicU64,
    /// Clicks not published: the queue was full or NATS refused.
    pub enriched_dropped: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Records one successful insert's duration.
    pub fn observe_insert(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |a: &AtomicU64| a.load(Relaxed);
        one(
            "analytics_consumer_pending",
            "gauge",
            "Messages on the stream not yet delivered to the consumer (consumer lag).",
            get(&self.consumer_pending).to_string(),
        );
        one(
            "analytics_consumer_ack_pending",
            "gauge",
            "Messages delivered but not yet acknowledged.",
            get(&self.consumer_ack_pending).to_string(),
        );
        one(
            "analytics_enriched_published_total",
            "counter",
            "Stored clicks published on the enriched-click subjects.",
            get(&self.enriched_published).to_string(),
        );
        one(
            "analytics_enriched_dropped_total",
            "counter",
            "Stored clicks not published (queue full or NATS refused); never slows the inserts.",
            get(&self.enriched_dropped).to_string(),
        );
        one(
            "analytics_rows_inserted_total",
            "counter",
            "Click rows inserted into ClickHouse.",
            get(&self.rows_inserted).to_string(),
        );
        one(
            "analytics_duplicates_skipped_total",
            "counter",
            "Events not inserted because they were already stored.",
            get(&self.duplicates_skipped).to_string(),
        );
        one(
            "analytics_batches_acked_total",
            "counter",
            "Click batches acknowledged after their rows were stored.",
            get(&self.batches_acked).to_string(),
        );
        one(
            "analytics_batches_retried_total",
            "counter",
            "Batches retried because ClickHouse was unavailable (one per batch per retry).",
            get(&self.batches_retried).to_string(),
        );
        one(
            "analytics_batches_parked_total",
            "counter",
            "Batches parked in parked_batches: undecodable, naming another node than their subject, or refused by ClickHouse park_after_attempts times.",
            get(&self.batches_parked).to_string(),
        );
        one(
            "analytics_batches_wrong_node_total",
            "counter",
            "Batches parked because they name another node than the subject they arrived on.",
            get(&self.batches_wrong_node).to_string(),
        );
        one(
            "analytics_batches_refused_total",
            "counter",
            "Tries in which ClickHouse refused one batch on its own (not counting unavailability).",
            get(&self.batches_refused).to_string(),
        );
        one(
            "analytics_batches_redelivered_total",
            "counter",
            "Messages delivered more than once by JetStream.",
            get(&self.batches_redelivered).to_string(),
        );
        one(
            "analytics_nats_errors_total",
            "counter",
            "Errors setting up or reading the JetStream consumer.",
            get(&self.nats_errors).to_string(),
        );
        let (hits, misses) = (get(&self.ua_cache_hits), get(&self.ua_cache_misses));
        one(
            "analytics_enrich_cache_hits_total",
            "counter",
            "User-agent cache hits.",
            hits.to_string(),
        );
        one(
            "analytics_enrich_cache_misses_total",
            "counter",
            "User-agent cache misses (full parses: bot rules and uap-core).",
            misses.to_string(),
        );
        let ratio = if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        };
        one(
            "analytics_enrich_cache_hit_ratio",
            "gauge",
            "User-agent cache hits / lookups since start.",
            format!("{ratio:.4}"),
        );

        let name = "analytics_insert_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Duration of a successful ClickHouse insert of one group of batches.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let count = get(&self.latency_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", get(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

/// Binds `addr` (port 0 allowed) and serves `/metrics` until the task is dropped.
/// Returns the bound address.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}

async fn render(State(metrics): State<Arc<Metrics>>) -> String {
    metrics.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.rows_inserted.fetch_add(5, Relaxed);
        m.ua_cache_hits.fetch_add(3, Relaxed);
        m.ua_cache_misses.fetch_add(1, Relaxed);
        m.observe_insert(Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains("\nanalytics_rows_inserted_total 5\n"),
            "{text}"
        );
        assert!(
            text.contains("\nanalytics_enrich_cache_hit_ratio 0.7500\n"),
            "{text}"
        );
        assert!(
            text.contains("analytics_insert_seconds_bucket{le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("analytics_insert_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("analytics_insert_seconds_count 1\n"),
            "{text}"
        );
    }
}
