//! The consume → enrich → deduplicate → insert → ack loop.
//!
//! Messages are taken in groups (up to `max_group_batches` messages or
//! `max_group_events` events, waiting at most `linger` after the first) so
//! that one deduplication lookup and one insert serve many batches. A group
//! is acknowledged only after all its rows are in ClickHouse; while ClickHouse
//! fails the group is retried with backoff and its messages get in-progress
//! acks, so JetStream does not hand them out again meanwhile.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt as _;
use snapshots::click::{CLICK_MAGIC, ClickBatch};

use crate::backoff::Backoff;
use crate::config::Config;
use crate::enrich::Enricher;
use crate::metrics::Metrics;
use crate::nats;
use crate::rows::{ClickRow, ParkedRow};
use crate::store::Store;

/// Owns the enricher and the store; runs on one task.
#[derive(Debug)]
pub struct Pipeline {
    config: Config,
    store: Store,
    enricher: Enricher,
    metrics: Arc<Metrics>,
}

/// A group of messages decoded into rows, waiting to be stored.
#[derive(Debug, Default)]
pub struct Group {
    pub messages: Vec<Message>,
    /// Rows not yet inserted (deduplicated within the group).
    pub rows: Vec<ClickRow>,
    /// Undecodable batches not yet written to `parked_batches`.
    pub parked: Vec<ParkedRow>,
    /// Events dropped because an earlier message of the group had them.
    pub duplicates_in_group: u64,
}

impl Pipeline {
    pub fn new(config: Config, store: Store, enricher: Enricher, metrics: Arc<Metrics>) -> Self {
        Pipeline {
            config,
            store,
            enricher,
            metrics,
        }
    }

    /// Reads `consumer` until its message stream fails (NATS gone, consumer
    /// deleted); the caller rebuilds it with backoff.
    pub async fn consume(
        &mut self,
        consumer: &jetstream::consumer::PullConsumer,
    ) -> anyhow::Result<()> {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.config.max_group_batches)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await?;
        loop {
            let Some(first) = messages.next().await else {
                anyhow::bail!("message stream ended");
            };
            let first = first?;
            let mut batch = vec![first];
            let mut events = event_count_hint(&batch[0].payload);
            let deadline = tokio::time::Instant::now() + self.config.linger();
            let mut failure = None;
            while batch.len() < self.config.max_group_batches
                && events < self.config.max_group_events
            {
                match tokio::time::timeout_at(deadline, messages.next()).await {
                    Ok(Some(Ok(m))) => {
                        events += event_count_hint(&m.payload);
                        batch.push(m);
                    }
                    Ok(Some(Err(e))) => {
                        failure = Some(anyhow::Error::from(e));
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            let group = self.decode(batch);
            self.store_and_ack(group).await;
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }

    /// Decodes and enriches a group's messages; undecodable ones become parked rows.
    pub fn decode(&mut self, messages: Vec<Message>) -> Group {
        let mut group = Group::default();
        let mut seen = HashSet::new();
        for msg in &messages {
            let info = msg.info().ok();
            if info.as_ref().is_some_and(|i| i.delivered > 1) {
                self.metrics.batches_redelivered.fetch_add(1, Relaxed);
            }
            match ClickBatch::parse(&msg.payload) {
                Ok(batch) => {
                    let node = String::from_utf8_lossy(batch.node_id()).into_owned();
                    for event in batch.events() {
                        if seen.insert(event.event_id) {
                            group
                                .rows
                                .push(self.enricher.enrich(&node, batch.batch_id(), &event));
                        } else {
                            group.duplicates_in_group += 1;
                        }
                    }
                }
                Err(error) => {
                    let msg_id = msg
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default();
                    let stream_seq = info.as_ref().map_or(0, |i| i.stream_sequence);
                    tracing::warn!(
                        %error, subject = %msg.subject, stream_seq, msg_id,
                        bytes = msg.payload.len(),
                        "undecodable click batch; parking it in parked_batches"
                    );
                    group.parked.push(ParkedRow {
                        parked_at: unix_now(),
                        stream: self.config.stream.clone(),
                        stream_seq,
                        subject: msg.subject.to_string(),
                        msg_id,
                        error: error.to_string(),
                        payload: msg.payload.to_vec(),
                    });
                }
            }
        }
        let (hits, misses) = self.enricher.take_cache_counts();
        self.metrics.ua_cache_hits.fetch_add(hits, Relaxed);
        self.metrics.ua_cache_misses.fetch_add(misses, Relaxed);
        group.messages = messages;
        group
    }

    /// Stores a group, retrying until ClickHouse takes it, then acks its messages.
    pub async fn store_and_ack(&mut self, mut group: Group) {
        self.store(&mut group).await;
        self.ack(&group).await;
    }

    /// Stores a group's rows and parked batches, retrying with backoff until
    /// ClickHouse takes them. Does not ack.
    pub async fn store(&mut self, group: &mut Group) {
        let mut backoff = Backoff::new();
        let mut last_progress = Instant::now();
        let progress_every = self.config.ack_wait() / 3;
        self.metrics
            .duplicates_skipped
            .fetch_add(std::mem::take(&mut group.duplicates_in_group), Relaxed);
        loop {
            match self.store_once(group).await {
                Ok(()) => return,
                Err(error) => {
                    let batches = group.messages.len() as u64;
                    self.metrics.batches_retried.fetch_add(batches, Relaxed);
                    tracing::warn!(%error, batches, rows = group.rows.len(), "storing click batches failed; retrying");
                    if last_progress.elapsed() >= progress_every {
                        // Tell JetStream we are still on it, so it does not
                        // redeliver these to another sidecar meanwhile.
                        for m in &group.messages {
                            let _ = m.ack_with(AckKind::Progress).await;
                        }
                        last_progress = Instant::now();
                    }
                    backoff.wait().await;
                }
            }
        }
    }

    /// Acknowledges a stored group's messages.
    pub async fn ack(&self, group: &Group) {
        let mut acked = 0;
        for m in &group.messages {
            match m.ack().await {
                Ok(()) => acked += 1,
                // The rows are stored; a lost ack means a redelivery, which
                // the deduplication lookup turns into a no-op.
                Err(error) => {
                    tracing::warn!(%error, "ack failed; the batch will be redelivered and deduplicated")
                }
            }
        }
        self.metrics.batches_acked.fetch_add(acked, Relaxed);
    }

    /// One attempt: park what must be parked, then insert the rows `clicks`
    /// does not have yet. Each step empties its part of the group when done,
    /// so a retry does not repeat it.
    async fn store_once(&mut self, group: &mut Group) -> clickhouse::error::Result<()> {
        if !group.parked.is_empty() {
            self.store.insert_parked(&group.parked).await?;
            self.metrics
                .batches_parked
                .fetch_add(group.parked.len() as u64, Relaxed);
            group.parked.clear();
        }
        if group.rows.is_empty() {
            return Ok(());
        }
        let lookup_started = Instant::now();
        let existing = self.store.existing_ids(&group.rows).await?;
        tracing::debug!(rows = group.rows.len(), found = existing.len(), took = ?lookup_started.elapsed(), "deduplication lookup");
        if !existing.is_empty() {
            let before = group.rows.len();
            group.rows.retain(|r| !existing.contains(&r.event_id));
            self.metrics
                .duplicates_skipped
                .fetch_add((before - group.rows.len()) as u64, Relaxed);
        }
        let started = Instant::now();
        self.store.insert_clicks(&group.rows).await?;
        self.metrics.observe_insert(started.elapsed());
        tracing::debug!(rows = group.rows.len(), took = ?started.elapsed(), "insert");
        self.metrics
            .rows_inserted
            .fetch_add(group.rows.len() as u64, Relaxed);
        group.rows.clear();
        Ok(())
    }

    /// Consumes forever: (re)creates the stream and consumer with backoff
    /// whenever reading fails.
    pub async fn run(&mut self, js: &jetstream::Context) {
        let mut backoff = Backoff::new();
        loop {
            match nats::consumer(js, &self.config).await {
                Ok(consumer) => {
                    backoff.reset();
                    if let Err(error) = self.consume(&consumer).await {
                        self.metrics.nats_errors.fetch_add(1, Relaxed);
                        tracing::warn!(%error, "reading the click stream failed; reconnecting");
                    }
                }
                Err(error) => {
                    self.metrics.nats_errors.fetch_add(1, Relaxed);
                    tracing::warn!(%error, "setting up the click consumer failed; retrying");
                }
            }
            backoff.wait().await;
        }
    }
}

/// The record count from a batch header, without checking the batch (0 if
/// it does not look like one): enough to size a group.
fn event_count_hint(payload: &[u8]) -> usize {
    if payload.len() >= 12 && payload[..4] == CLICK_MAGIC {
        u32::from_le_bytes([payload[8], payload[9], payload[10], payload[11]]) as usize
    } else {
        0
    }
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}
