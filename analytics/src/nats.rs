//! The JetStream side: the stream and durable pull consumer the sidecar reads.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    stream::{self, DiscardPolicy, StorageType},
};

use crate::config::Config;
use crate::metrics::Metrics;

/// How long the stream keeps batches: enough to rebuild ClickHouse after a
/// week-long analytics outage, bounded so the disk cannot fill forever.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Window in which JetStream drops a re-published batch with the same
/// `Nats-Msg-Id` (the engine's publish retries).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Connects to NATS, retrying in the background if it is down at start.
pub async fn connect(config: &Config) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name("analytics")
        .retry_on_initial_connect()
        .connect(&config.nats)
        .await
}

/// The stream configuration used when the sidecar is the first to create it.
pub fn stream_config(config: &Config) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        subjects: vec![config.subjects.clone()],
        storage: StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: STREAM_MAX_AGE,
        discard: DiscardPolicy::Old,
        ..Default::default()
    }
}

/// The durable consumer's configuration: explicit acks, every message of the
/// stream, unlimited redeliveries (a batch is parked, never dropped, when it
/// cannot be decoded), enough acks outstanding for a group plus the prefetch.
pub fn consumer_config(config: &Config) -> pull::Config {
    pull::Config {
        durable_name: Some(config.consumer.clone()),
        name: Some(config.consumer.clone()),
        description: Some("analytics sidecar: click batches into ClickHouse".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait(),
        max_deliver: -1,
        max_ack_pending: (config.max_group_batches as i64 * 4).max(1024),
        ..Default::default()
    }
}

/// Gets or creates the stream, then gets or creates the durable consumer.
/// An existing stream or consumer is used as it is.
pub async fn consumer(js: &jetstream::Context, config: &Config) -> anyhow::Result<PullConsumer> {
    let stream = js
        .get_or_create_stream(stream_config(config))
        .await
        .map_err(|e| anyhow::anyhow!("getting or creating stream {}: {e}", config.stream))?;
    let consumer = stream
        .get_or_create_consumer(&config.consumer, consumer_config(config))
        .await
        .map_err(|e| anyhow::anyhow!("getting or creating consumer {}: {e}", config.consumer))?;
    Ok(consumer)
}

/// Polls the consumer's info once a second and publishes the lag as metrics.
/// Runs until dropped; errors (NATS down) just skip a sample.
pub async fn watch_lag(js: jetstream::Context, config: Config, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut consumer: Option<PullConsumer> = None;
    loop {
        tick.tick().await;
        if consumer.is_none() {
            consumer = js
                .get_consumer_from_stream(&config.consumer, &config.stream)
                .await
                .ok();
        }
        let Some(c) = &consumer else { continue };
        match c.get_info().await {
            Ok(info) => {
                metrics.consumer_pending.store(info.num_pending, Relaxed);
                metrics
                    .consumer_ack_pending
                    .store(info.num_ack_pending as u64, Relaxed);
            }
            Err(_) => consumer = None,
        }
    }
}
