//! Consuming the `LINKS` change stream and fanning each change out to every
//! core.
//!
//! An ordered push consumer (ephemeral, no acks: the engine's position is the
//! change sequence it has, not anything the server stores) starts at the
//! first stream message newer than what the engine already has, found by a
//! binary search over stream sequences (a dozen `STREAM.MSG.GET` round trips
//! for a million messages). When the search cannot be done (a message in the
//! middle was deleted), it falls back to delivering the whole stream and
//! skipping what is covered, which costs one decode per old message.
//!
//! NATS down at start or later: the engine keeps serving what it has and
//! reconnects with capped exponential backoff, resuming after the last
//! change it applied.

use crate::core::state::DeltaRecord;
use crate::shared::Shared;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use snapshots::delta::LinkDelta;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs forever on the control runtime.
pub async fn run(shared: Arc<Shared>, url: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match consume(&shared, &url, &mut backoff).await {
            Ok(()) => tracing::warn!("change stream ended; reconnecting"),
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "change stream unavailable"),
        }
        shared.nats_connected.store(false, Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn consume(shared: &Shared, url: &str, backoff: &mut Duration) -> anyhow::Result<()> {
    let config = &shared.config;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .connect(url)
        .await?;
    let js = jetstream::new(client.clone());
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: config.links_stream.clone(),
            subjects: vec![config.links_subject.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let known = shared.known_seq();
    let start = start_sequence(&mut stream, known).await;
    tracing::info!(stream = %config.links_stream, known, start_stream_seq = ?start, "consuming link changes");
    let consumer = stream
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: config.links_subject.clone(),
            deliver_policy: match start {
                Some(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
                None => consumer::DeliverPolicy::All,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    shared.nats_connected.store(true, Relaxed);
    *backoff = Duration::from_millis(100);
    while let Some(message) = messages.next().await {
        let message = message?;
        if let Ok(info) = message.info() {
            shared.delta_lag.store(info.pending, Relaxed);
        }
        shared.deltas_received.fetch_add(1, Relaxed);
        match LinkDelta::decode(&message.payload) {
            Ok(delta) => {
                // Redelivered or covered changes are skipped here once
                // rather than on every core.
                if delta.seq > shared.known_seq() {
                    shared.broadcast_delta(DeltaRecord::from(delta));
                }
            }
            Err(e) => {
                shared.deltas_invalid.fetch_add(1, Relaxed);
                tracing::error!(error = %e, subject = %message.subject, "skipping an invalid link change");
            }
        }
    }
    Ok(())
}

/// The stream sequence of the first change newer than `known`, or `None` to
/// deliver everything.
async fn start_sequence(stream: &mut stream::Stream, known: u64) -> Option<u64> {
    if known == 0 {
        return None;
    }
    let state = stream.info().await.ok()?.state.clone();
    if state.messages == 0 {
        return Some(state.last_sequence + 1);
    }
    let (mut lo, mut hi) = (state.first_sequence, state.last_sequence + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let message = stream.get_raw_message(mid).await.ok()?;
        let seq = LinkDelta::decode(&message.payload).ok()?.seq;
        if seq > known {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}
