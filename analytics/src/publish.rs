//! The public enriched-click stream: every click the sidecar stores is
//! published, as JSON, on core NATS subject `<enriched_subject>.<org id>`
//! (e.g. `clicks.enriched.42`), for other subscribers (control's
//! `link.clicked` webhooks, dashboards, fraud checks).
//!
//! **After the insert, off its path.** The pipeline hands the rows of each
//! part ClickHouse took to a bounded queue ([`Publisher::offer`], never
//! waiting) and a task of its own publishes them; a slow or absent
//! subscriber, or a slow NATS, costs the insert nothing: when the queue is
//! full the rows are dropped and counted
//! (`analytics_enriched_dropped_total`).
//!
//! **At least once, not exactly once.** A part's rows are offered whether
//! its insert stored them or found them stored already, so a batch
//! redelivered after a crash between insert and publish is published again;
//! subscribers deduplicate by `event_id` (the engine's, stable). Core NATS
//! itself delivers to whoever subscribes at that moment: a subscriber that
//! must not miss clicks while down reads ClickHouse, or binds a JetStream
//! stream to these subjects.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::mpsc;

use crate::encoded::RowRef;
use crate::metrics::Metrics;
use crate::rows::ClickRow;

/// One published click (the record is shared with its readers).
pub use snapshots::enriched::EnrichedClick;

impl From<&ClickRow> for EnrichedClick {
    fn from(r: &ClickRow) -> Self {
        EnrichedClick {
            event_id: r.event_id.iter().map(|b| format!("{b:02x}")).collect(),
            org_id: r.org_id,
            domain: r.domain.clone(),
            code: r.code.clone(),
            ts_ms: r.ts_ms,
            status: r.status,
            country: r.country.clone(),
            city: r.city.clone(),
            device: r.device.clone(),
            browser: r.browser.clone(),
            os: r.os.clone(),
            referrer_host: r.referrer_host.clone(),
            language: r.language.clone(),
            is_bot: r.is_bot != 0,
            is_preview: r.is_preview != 0,
            rule: r.rule,
            node: r.node.clone(),
        }
    }
}

/// The pipeline's end of the queue.
#[derive(Debug, Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Vec<EnrichedClick>>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Starts the publishing task on `client`: subjects `<prefix>.<org>`,
    /// up to `queue` parts waiting.
    pub fn spawn(
        client: async_nats::Client,
        prefix: String,
        queue: usize,
        metrics: Arc<Metrics>,
    ) -> (Publisher, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let task = tokio::spawn(run(client, prefix, rx, metrics.clone()));
        (Publisher { tx, metrics }, task)
    }

    /// Queues the stored `rows` for publishing; never waits (a full queue
    /// drops them, counted).
    pub fn offer<'a>(&self, rows: impl IntoIterator<Item = RowRef<'a>>) {
        let clicks: Vec<EnrichedClick> = rows
            .into_iter()
            .map(|r| EnrichedClick::from(&r.to_row()))
            .collect();
        if clicks.is_empty() {
            return;
        }
        let n = clicks.len() as u64;
        if self.tx.try_send(clicks).is_err() {
            self.metrics.enriched_dropped.fetch_add(n, Relaxed);
        }
    }
}

async fn run(
    client: async_nats::Client,
    prefix: String,
    mut rx: mpsc::Receiver<Vec<EnrichedClick>>,
    metrics: Arc<Metrics>,
) {
    while let Some(clicks) = rx.recv().await {
        for click in clicks {
            let subject = snapshots::enriched::subject(&prefix, click.org_id);
            let payload = serde_json::to_vec(&click).expect("a click serialises");
            match client.publish(subject, payload.into()).await {
                Ok(()) => metrics.enriched_published.fetch_add(1, Relaxed),
                Err(_) => metrics.enriched_dropped.fetch_add(1, Relaxed),
            };
        }
    }
}
